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
from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, Table, delete, insert, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.db import dialect_insert
from territory_service.owners.repository import OwnerRepository
from territory_service.ownership.changes import Attribution, Held, OwnershipChange
from territory_service.ownership.models import Ownership, OwnershipEvent, PlannedChange
from territory_service.ownership.pool_run import Change, Place

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
_PLANNED_COLUMNS = (*_PLACE, *_KEPT, "from_held_since")


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
        held = change.held
        made = OwnershipChange.decided(change.customer_id, held, change.decision, at=at)
        before = None if held is None else held.held_since
        records.append((*place, *kept(made.row() | made.event(_NO_ONE)), before))
    connection = await session.connection()
    if connection.dialect.driver == "asyncpg":
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.copy_records_to_table(_PLANNED.name, records=records, columns=_PLANNED_COLUMNS)
        return
    for start in range(0, len(records), WRITE_BATCH):
        batch = records[start : start + WRITE_BATCH]
        rows = [dict(zip(_PLANNED_COLUMNS, record, strict=True)) for record in batch]
        await session.execute(insert(_PLANNED), rows)


_NO_ONE = Attribution(None, None, None, None)  # a plan holds no attribution: the job does


async def apply_planned(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    generation: int,
    piece: int,
    by: Attribution,
    keep: bool,
) -> tuple[int, set[uuid.UUID]]:
    """Write piece `piece` of a plan with its events in the caller's transaction; return how
    many rows it wrote and the customers it did not (lost to a concurrent writer, or to an
    owner deactivated since the plan; their rows are untouched). The piece's rows are dropped,
    unless `keep` (the plan is still being made: a new attempt at it would need them).

    The owners receiving customers are read again here under key-share locks, as every writer
    that gives owners customers does (see `OwnerRepository.locked`), so no deactivation can
    slip in before this transaction commits."""
    planned = _PLANNED.c
    in_piece = (
        (planned.job_id == job_id) & (planned.generation == generation) & (planned.piece == piece)
    )
    receiving = select(planned.owner_id).where(in_piece, planned.owner_id.is_not(None)).distinct()
    owners = set((await session.execute(receiving)).scalars())
    available = [o.id for o in await OwnerRepository(session).locked(owners) if o.active]
    connection = await session.connection()
    if connection.dialect.driver == "asyncpg":
        # Through SQLAlchemy first, so the transaction has begun before the driver is used.
        # A piece's rows joined with those it wrote: hash joins, whatever the statistics of a
        # plan stored moments ago say (a nested loop over them is quadratic).
        await session.execute(text("SET LOCAL enable_nestloop = off"))
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        statement = _APPLY_KEEPING if keep else _APPLY_DROPPING
        row = await raw.fetchrow(statement, job_id, generation, piece, available, *by)
        return row[0], set(row[1])
    return await _apply_portably(session, in_piece, available, by, keep=keep)


# PostgreSQL: one statement reads (or takes out) the piece's rows, upserts them (compare-and-set
# on the version), inserts the events of those it wrote, and answers how many it wrote and which
# customers it did not.
_FROM_PIECE = {name: f"c.{name}" for name in _KEPT} | {
    name: f"${position}" for position, name in enumerate(Attribution._fields, start=5)
}
_IN_PIECE = "job_id = $1 AND generation = $2 AND piece = $3"
_APPLY = f"""
WITH piece AS ({{piece}}), written AS (
    INSERT INTO ownerships AS o ({", ".join(_ROW)})
    SELECT {", ".join(_ROW)} FROM piece WHERE owner_id IS NULL OR owner_id = ANY($4::uuid[])
    ON CONFLICT (customer_id) DO UPDATE SET
        {", ".join(f"{name} = excluded.{name}" for name in _UPDATED)}
    WHERE o.version = excluded.version - 1
    RETURNING o.customer_id
), events AS (
    INSERT INTO ownership_events ({", ".join(_EVENT)})
    SELECT {", ".join(_FROM_PIECE[name] for name in _EVENT)}
    FROM piece AS c WHERE c.customer_id IN (SELECT customer_id FROM written)
    ORDER BY c.customer_id
)
SELECT (SELECT count(*) FROM written)::integer, array(
    SELECT customer_id FROM piece EXCEPT SELECT customer_id FROM written
)
"""
_APPLY_KEEPING = _APPLY.format(piece=f"SELECT * FROM planned_changes WHERE {_IN_PIECE}")
_APPLY_DROPPING = _APPLY.format(piece=f"DELETE FROM planned_changes WHERE {_IN_PIECE} RETURNING *")


async def _apply_portably(
    session: AsyncSession,
    in_piece: ColumnElement[bool],
    available: list[uuid.UUID],
    by: Attribution,
    *,
    keep: bool,
) -> tuple[int, set[uuid.UUID]]:
    """The same in several statements, for SQLite."""
    planned = _PLANNED.c
    customers = set((await session.execute(select(planned.customer_id).where(in_piece))).scalars())
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
    if not keep:
        await session.execute(delete(_PLANNED).where(in_piece))
    return len(written), customers - written


async def plan_stored(session: AsyncSession) -> None:
    """After storing a plan: refresh the table's statistics, so that applying a piece is
    planned for the thousands of rows it has (a table nobody analyzed looks empty, and the
    join of a piece with what it wrote becomes quadratic). Autovacuum may come much later."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await session.execute(text(f"ANALYZE {_PLANNED.name}"))


async def applied_before(
    session: AsyncSession, *, job_id: uuid.UUID, pieces: Collection[int]
) -> dict[uuid.UUID, tuple[Held | None, Place]]:
    """The changes of a job's plan in `pieces` (those applied): each customer's row before
    (None: it had none) and place after, for `PoolRun.prepare(undo=...)`."""
    planned = _PLANNED.c
    rows = await session.execute(
        select(
            planned.customer_id,
            planned.version,
            planned.from_territory_id,
            planned.from_owner_id,
            planned.from_held_since,
            planned.territory_id,
            planned.owner_id,
        ).where(planned.job_id == job_id, planned.piece.in_(sorted(pieces)))
    )
    return {
        customer: (
            None if version == 1 else Held(version - 1, territory, owner, since),
            (new_territory, new_owner),
        )
        for customer, version, territory, owner, since, new_territory, new_owner in rows
    }


async def forget_pieces(
    session: AsyncSession, *, job_id: uuid.UUID, pieces: Collection[int], keep: bool = False
) -> None:
    """Drop the rows of a job's plan in `pieces` (or, `keep`, all but those)."""
    planned = _PLANNED.c
    chosen = planned.piece.in_(sorted(pieces))
    await session.execute(
        delete(_PLANNED).where(planned.job_id == job_id, ~chosen if keep else chosen)
    )


async def forget_plans(session: AsyncSession, *, job_id: uuid.UUID) -> None:
    """Drop what is left of a job's plans once it has ended."""
    await session.execute(delete(_PLANNED).where(_PLANNED.c.job_id == job_id))
