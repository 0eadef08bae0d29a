"""Writing what a pass over the pool changed: thousands of ownership rows and their events per
statement, each a compare-and-set on the row's version.

A chunk's changed rows go in one upsert (`ON CONFLICT ... DO UPDATE ... WHERE version =
expected`) and their events in one insert, with the values `ownership/changes.py` gives every
change. A row that a concurrent writer changed since the pass read it is not overwritten; it is
answered as lost and the caller resolves it again under a row lock.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Sequence

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from territory_service.db import dialect_insert, utcnow
from territory_service.owners.repository import OwnerRepository
from territory_service.ownership.changes import Attribution, OwnershipChange
from territory_service.ownership.models import Ownership, OwnershipEvent
from territory_service.ownership.pool_run import Change
from territory_service.security.principal import Principal

_OWNERSHIPS: Table = Ownership.__table__  # type: ignore[assignment]
_EVENTS: Table = OwnershipEvent.__table__  # type: ignore[assignment]
# Rows per statement; keeps each statement under both drivers' parameter limits.
WRITE_BATCH = 1000

_ROW = tuple(column.name for column in _OWNERSHIPS.c)
_UPDATED = tuple(name for name in _ROW if name != "customer_id")
# The event's id and feed position are the database's to give.
_EVENT = tuple(column.name for column in _EVENTS.c if column.name not in ("id", "position"))


async def write_changes(
    session: AsyncSession,
    changes: Sequence[Change],
    *,
    actor: Principal | None,
    reason: str,
) -> list[Change]:
    """Write the changes with their events in the caller's transaction; return the ones lost to
    a concurrent writer (their rows are untouched).

    The run decided with the owners it read when it began. The owners receiving customers are
    read again here under key-share locks, as every writer that gives owners customers does
    (see `OwnerRepository.locked`): a change to an owner deactivated since is
    lost too, and no deactivation can slip in before this transaction commits."""
    if not changes:
        return []
    receiving = {c.decision.owner_id for c in changes if c.decision.owner_id is not None}
    available = {o.id for o in await OwnerRepository(session).locked(receiving) if o.active}
    now = utcnow()
    writable = [
        OwnershipChange.decided(c.customer_id, c.held, c.decision, at=now)
        for c in changes
        if c.decision.owner_id is None or c.decision.owner_id in available
    ]
    lost = {c.customer_id for c in changes} - {c.customer_id for c in writable}
    if writable:
        by = Attribution.of(reason=reason, actor=actor)
        connection = await session.connection()
        if connection.dialect.driver == "asyncpg":
            lost |= await _copy_and_upsert(connection, writable, by)
        else:
            lost |= await _upsert(session, writable, by)
    return [c for c in changes if c.customer_id in lost]


async def _upsert(
    session: AsyncSession, changes: Sequence[OwnershipChange], by: Attribution
) -> set[uuid.UUID]:
    """The portable writer: a multi-row upsert, then the events of the rows it wrote. Returns
    the customers whose rows it did not write."""
    insert = dialect_insert(session.get_bind().dialect.name, _OWNERSHIPS)
    upsert = insert.on_conflict_do_update(
        index_elements=[_OWNERSHIPS.c.customer_id],
        set_={name: insert.excluded[name] for name in _UPDATED},
        where=_OWNERSHIPS.c.version == insert.excluded.version - 1,
    ).returning(_OWNERSHIPS.c.customer_id)
    written: set[uuid.UUID] = set()
    for start in range(0, len(changes), WRITE_BATCH):
        batch = changes[start : start + WRITE_BATCH]
        result = await session.execute(upsert, [c.row() for c in batch])
        written.update(result.scalars())
    events = [c.event(by) for c in changes if c.customer_id in written]
    if events:
        await session.execute(_EVENTS.insert(), events)
    return {c.customer_id for c in changes} - written


# PostgreSQL: the changes go to a session-local staging table by COPY, then one statement
# upserts the rows (compare-and-set on the version), inserts the events of those it wrote and
# answers the customers it did not write (usually none, so nothing comes back). The staging
# table has the columns of both tables, typed as they are, but those of the attribution, the
# same for every change: they are the statement's parameters.
_STAGING = "ownership_changes"
_STAGED = tuple(name for name in dict.fromkeys(_ROW + _EVENT) if name not in Attribution._fields)
_FROM_STAGING = {name: f"c.{name}" for name in _STAGED} | {
    name: f"${position}" for position, name in enumerate(Attribution._fields, start=1)
}


def _create_staging() -> str:
    types = {c.name: c.type for c in (*_EVENTS.c, *_OWNERSHIPS.c)}
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    columns = ", ".join(f"{name} {types[name].compile(dialect=dialect)}" for name in _STAGED)
    return f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ({columns}) ON COMMIT DELETE ROWS"


_CREATE_STAGING = _create_staging()
_APPLY_STAGING = f"""
WITH written AS (
    INSERT INTO ownerships AS o ({", ".join(_ROW)})
    SELECT {", ".join(_ROW)} FROM {_STAGING}
    ON CONFLICT (customer_id) DO UPDATE SET
        {", ".join(f"{name} = excluded.{name}" for name in _UPDATED)}
    WHERE o.version = excluded.version - 1
    RETURNING o.customer_id
), events AS (
    INSERT INTO ownership_events ({", ".join(_EVENT)})
    SELECT {", ".join(_FROM_STAGING[name] for name in _EVENT)}
    FROM {_STAGING} AS c JOIN written AS w ON w.customer_id = c.customer_id
    ORDER BY c.customer_id
)
SELECT c.customer_id FROM {_STAGING} AS c
WHERE NOT EXISTS (SELECT FROM written AS w WHERE w.customer_id = c.customer_id)
"""


async def _copy_and_upsert(
    connection: AsyncConnection, changes: Sequence[OwnershipChange], by: Attribution
) -> set[uuid.UUID]:
    # Through SQLAlchemy first, so the transaction has begun before the driver is used directly.
    await connection.execute(text(_CREATE_STAGING))
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    staged = operator.itemgetter(*_STAGED)
    records = [staged(c.row() | c.event(by)) for c in changes]
    await raw.copy_records_to_table(_STAGING, records=records, columns=_STAGED)
    return {row[0] for row in await raw.fetch(_APPLY_STAGING, *by)}
