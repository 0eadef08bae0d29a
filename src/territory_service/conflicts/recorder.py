"""Logging the conflicts the rule engine signals: one open row per cause, repeats update it.

`record_signals` runs inside the caller's transaction (a resolution run, a claim), so the
conflicts it logs commit or roll back with the work that found them. Each cause is one
`INSERT ... ON CONFLICT (cause) WHERE status = 'open' DO UPDATE`: the partial unique index
`uq_conflicts_open_cause` makes concurrent detections of the same cause meet on one row, on
PostgreSQL and on SQLite alike, with no read-then-write race.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from territory_service.conflicts.models import Conflict, ConflictStatus
from territory_service.db import dialect_insert, utcnow
from territory_service.ids import new_id
from territory_service.rules.resolution import ConflictSignal

# A conflict lists the first customers seen with its cause; `customer_count` says how many.
LISTED_CUSTOMERS = 100
CAUSE_LENGTH = 400  # conflicts.cause is VARCHAR(400)

_TABLE: Table = Conflict.__table__  # type: ignore[assignment]
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
    # Sorted, so that two runs sharing causes lock their rows in the same order (no deadlock).
    rows = [
        _row(cause, group, ruleset_version=ruleset_version, now=now)
        for cause, group in sorted(groups.items())
    ]
    # One statement with one parameter set per cause: the driver's executemany.
    await session.execute(_upsert(session.get_bind().dialect.name), rows)


def _row(
    cause: str, group: list[Detection], *, ruleset_version: int | None, now: dt.datetime
) -> dict[str, Any]:
    first = group[0].signal
    customers = list(
        dict.fromkeys(str(customer) for detection in group for customer in detection.customer_ids)
    )
    return {
        "id": new_id(),
        "kind": first.kind,
        "status": ConflictStatus.OPEN,
        "cause": cause,
        "territory_id": first.territory_id,
        "customer_ids": customers[:LISTED_CUSTOMERS],
        "customer_count": len(customers),
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
            "customer_count": _TABLE.c.customer_count + new.customer_count,
            "last_seen_at": new.last_seen_at,
            "updated_at": new.updated_at,
            "version": _TABLE.c.version + 1,
        },
    )
