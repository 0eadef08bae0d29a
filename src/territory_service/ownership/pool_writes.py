"""Writing what a pass over the pool changed, in two moves that any replica may make: the plan
(`plan_changes`: the decided changes stored as `planned_changes` rows, a piece number each) and
its pieces (`apply_planned`: one piece's rows and their events written in one statement each,
every row a compare-and-set on the ownership version).

Both moves carry the values `ownership/changes.py` gives every change. A row that a concurrent
writer changed since the pass read it is not overwritten; `apply_planned` answers it as lost
and the caller resolves it again under a row lock.
"""

from __future__ import annotations

import datetime as dt
import operator
import uuid
from collections.abc import Sequence

from sqlalchemy import Table, delete, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.db import dialect_insert
from territory_service.owners.repository import OwnerRepository
from territory_service.ownership.changes import Attribution, OwnershipChange
from territory_service.ownership.models import Ownership, OwnershipEvent, PlannedChange
from territory_service.ownership.pool_run import Change

_OWNERSHIPS: Table = Ownership.__table__  # type: ignore[assignment]
_EVENTS: Table = OwnershipEvent.__table__  # type: ignore[assignment]
_PLANNED: Table = PlannedChange.__table__  # type: ignore[assignment]
# Rows per statement when inserting the plan portably; under both drivers' parameter limits.
WRITE_BATCH = 1000

_ROW = tuple(column.name for column in _OWNERSHIPS.c)
_UPDATED = tuple(name for name in _ROW if name != "customer_id")
# The event's id and feed position are the database's to give.
_EVENT = tuple(column.name for column in _EVENTS.c if column.name not in ("id", "position"))
# What a plan keeps of a change: all of the row and of its event but the attribution.
_KEPT = tuple(name for name in dict.fromkeys(_ROW + _EVENT) if name not in Attribution._fields)
_PLACE = ("job_id", "generation", "piece")


async def plan_changes(
    session: AsyncSession,
    changes: Sequence[Change],
    *,
    job_id: uuid.UUID,
    generation: int,
    piece: int,
    at: dt.datetime,
) -> None:
    """Store `changes` as piece `piece` of the plan `generation` of job `job_id`."""
    if not changes:
        return
    kept = operator.itemgetter(*_KEPT)
    place = (job_id, generation, piece)
    records = []
    for change in changes:
        made = OwnershipChange.decided(change.customer_id, change.held, change.decision, at=at)
        records.append((*place, *kept(made.row() | made.event(_NO_ONE))))
    connection = await session.connection()
    if connection.dialect.driver == "asyncpg":
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.copy_records_to_table(_PLANNED.name, records=records, columns=(*_PLACE, *_KEPT))
        return
    names = (*_PLACE, *_KEPT)
    for start in range(0, len(records), WRITE_BATCH):
        batch = records[start : start + WRITE_BATCH]
        await session.execute(insert(_PLANNED), [dict(zip(names, r, strict=True)) for r in batch])


_NO_ONE = Attribution(None, None, None, None)  # a plan holds no attribution: the job does


async def apply_planned(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    generation: int,
    piece: int,
    by: Attribution,
) -> tuple[int, set[uuid.UUID]]:
    """Write piece `piece` of a plan with its events in the caller's transaction, and forget
    it; return how many rows it wrote and the customers it did not (lost to a concurrent
    writer, or to an owner deactivated since the plan; their rows are untouched).

    The owners receiving customers are read again here under key-share locks, as every writer
    that gives owners customers does (see `OwnerRepository.locked`), so no deactivation can
    slip in before this transaction commits."""
    planned = _PLANNED.c
    in_piece = (
        (planned.job_id == job_id) & (planned.generation == generation) & (planned.piece == piece)
    )
    customers = set((await session.execute(select(planned.customer_id).where(in_piece))).scalars())
    receiving = set(
        (
            await session.execute(
                select(planned.owner_id).where(in_piece, planned.owner_id.is_not(None)).distinct()
            )
        ).scalars()
    )
    available = {o.id for o in await OwnerRepository(session).locked(receiving) if o.active}
    writable = in_piece & (planned.owner_id.is_(None) | planned.owner_id.in_(available))
    new = dialect_insert(session.get_bind().dialect.name, _OWNERSHIPS).from_select(
        _ROW, select(*(planned[name] for name in _ROW)).where(writable)
    )
    upsert = new.on_conflict_do_update(
        index_elements=[_OWNERSHIPS.c.customer_id],
        set_={name: new.excluded[name] for name in _UPDATED},
        where=_OWNERSHIPS.c.version == new.excluded.version - 1,
    ).returning(_OWNERSHIPS.c.customer_id)
    written = set((await session.execute(upsert)).scalars())
    attribution = {name: literal(value) for name, value in by._asdict().items()}
    columns = [attribution[name] if name in attribution else planned[name] for name in _EVENT]
    ordered = sorted(written)
    for start in range(0, len(ordered), WRITE_BATCH):
        batch = ordered[start : start + WRITE_BATCH]
        source = select(*columns).where(in_piece, planned.customer_id.in_(batch))
        await session.execute(
            insert(_EVENTS).from_select(_EVENT, source.order_by(planned.customer_id))
        )
    await session.execute(delete(_PLANNED).where(in_piece))
    return len(written), customers - written


async def forget_plans(session: AsyncSession, *, job_id: uuid.UUID) -> None:
    """Drop whatever is left of a job's plans (an attempt that did not finish, a cancelled job)."""
    await session.execute(delete(_PLANNED).where(_PLANNED.c.job_id == job_id))
