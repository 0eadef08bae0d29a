"""Logging the conflicts the rule engine signals: one open row per cause, repeats update it.

`record_signals` runs inside the caller's transaction (a resolution run, a claim), so the
conflicts it logs commit or roll back with the work that found them. Each cause is one
`INSERT ... ON CONFLICT (cause) WHERE status = 'open' DO UPDATE`: the partial unique index
`uq_conflicts_open_cause` makes concurrent detections of the same cause meet on one row, on
PostgreSQL and on SQLite alike, with no read-then-write race.

Every customer a conflict names gets a row in `conflict_customers` (`INSERT ... ON CONFLICT DO
NOTHING`), so that a customer finds every conflict about it however many customers share the
cause. The rows that insert returns are the customers new to the conflict: they raise
`customer_count` and fill the sample in `customer_ids` while it has room. The upsert has locked
the conflict's row by then, so concurrent detections of one cause count each customer once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from territory_service.conflicts.models import Conflict, ConflictCustomer, ConflictStatus
from territory_service.db import dialect_insert, utcnow
from territory_service.engine.resolution import ConflictSignal
from territory_service.ids import new_id

# A conflict shows the first customers seen with its cause as a sample; `customer_count` says
# how many there are, and `conflict_customers` holds them all.
LISTED_CUSTOMERS = 100
CAUSE_LENGTH = 400  # conflicts.cause is VARCHAR(400)

_TABLE: Table = Conflict.__table__  # type: ignore[assignment]
_NAMED: Table = ConflictCustomer.__table__  # type: ignore[assignment]
_OPEN = text("status = 'open'")


def cause_key(signal: ConflictSignal) -> str:
    """The stored cause: kind and cause parts joined with `:`.

    A cause longer than the column (a tie between many rules) keeps its readable start and ends
    in a hash of the whole, so it still names exactly one cause.
    """
    cause = ":".join((signal.kind.value, *signal.cause))
    if len(cause) <= CAUSE_LENGTH:
        return cause
    digest = hashlib.sha256(cause.encode()).hexdigest()
    return f"{cause[: CAUSE_LENGTH - len(digest) - 1]}#{digest}"


@dataclass(frozen=True)
class Detection:
    """One detection of a cause that involves several customers at once, such as a pair of
    duplicates: `signal` describes it, `customer_ids` are all the customers it names."""

    signal: ConflictSignal
    customer_ids: tuple[uuid.UUID, ...]


async def record_signals(
    session: AsyncSession, signals: Sequence[ConflictSignal], *, ruleset_version: int | None
) -> None:
    """Log `signals` as conflicts within the caller's transaction (it opens none)."""
    await record_detections(
        session,
        [Detection(signal, (signal.customer_id,)) for signal in signals],
        ruleset_version=ruleset_version,
    )


async def record_detections(
    session: AsyncSession, detections: Sequence[Detection], *, ruleset_version: int | None
) -> None:
    """Log `detections` as conflicts within the caller's transaction (it opens none)."""
    if not detections:
        return
    groups: dict[str, list[Detection]] = {}
    for detection in detections:
        groups.setdefault(cause_key(detection.signal), []).append(detection)
    now = utcnow()
    dialect = session.get_bind().dialect.name
    # Sorted, so that two runs sharing causes lock their rows in the same order (no deadlock).
    rows = [
        _row(cause, group, ruleset_version=ruleset_version, now=now)
        for cause, group in sorted(groups.items())
    ]
    # One statement with one parameter set per cause: the driver's executemany. The rows come
    # back in no particular order; the cause names each (one open conflict per cause).
    logged = await session.execute(
        _upsert(dialect).returning(_TABLE.c.id, _TABLE.c.cause, _TABLE.c.customer_ids), rows
    )
    named = {
        conflict_id: (_customers(groups[cause]), listed) for conflict_id, cause, listed in logged
    }
    await _name_customers(session, dialect, named)


def _customers(group: list[Detection]) -> list[uuid.UUID]:
    """The customers a cause's detections name, each once, in the order they were seen."""
    return list(dict.fromkeys(c for detection in group for c in detection.customer_ids))


async def _name_customers(
    session: AsyncSession,
    dialect: str,
    named: dict[uuid.UUID, tuple[list[uuid.UUID], list[str]]],
) -> None:
    """Link each conflict to its customers; count the new ones and add them to the sample."""
    links = [
        {"conflict_id": conflict_id, "customer_id": customer_id}
        for conflict_id, (customers, _) in named.items()
        for customer_id in customers
    ]
    insert = dialect_insert(dialect, _NAMED).on_conflict_do_nothing()
    inserted = await session.execute(
        insert.returning(_NAMED.c.conflict_id, _NAMED.c.customer_id), links
    )
    added = {(conflict_id, customer_id) for conflict_id, customer_id in inserted}
    changes = []
    for conflict_id, (customers, listed) in named.items():
        new = [c for c in customers if (conflict_id, c) in added]
        if new:
            room = max(LISTED_CUSTOMERS - len(listed), 0)
            changes.append(
                {
                    "b_id": conflict_id,
                    "b_added": len(new),
                    "b_listed": listed + [str(c) for c in new[:room]],
                }
            )
    if changes:
        await session.execute(_count_and_list, changes)


_count_and_list = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("b_id"))
    .values(
        customer_count=_TABLE.c.customer_count + bindparam("b_added"),
        customer_ids=bindparam("b_listed", type_=_TABLE.c.customer_ids.type),
    )
)


def _row(
    cause: str, group: list[Detection], *, ruleset_version: int | None, now: dt.datetime
) -> dict[str, Any]:
    first = group[0].signal
    return {
        "id": new_id(),
        "kind": first.kind,
        "status": ConflictStatus.OPEN,
        "cause": cause,
        "territory_id": first.territory_id,
        "customer_ids": [],  # filled with the customers, as for a repeat (`_name_customers`)
        "customer_count": 0,
        "rule_ids": [str(rule_id) for rule_id in first.rule_ids],
        "owner_ids": [str(owner_id) for owner_id in first.owner_ids],
        "details": first.details,
        "ruleset_version": ruleset_version,
        "occurrences": len(group),
        "last_seen_at": now,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _upsert(dialect: str) -> Insert:
    statement = dialect_insert(dialect, _TABLE)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_TABLE.c.cause],
        index_where=_OPEN,
        set_={
            "occurrences": _TABLE.c.occurrences + new.occurrences,
            "last_seen_at": new.last_seen_at,
            "updated_at": new.updated_at,
            "version": _TABLE.c.version + 1,
        },
    )
