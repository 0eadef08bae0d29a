"""The rules of DESIGN §3.6 ("exactly one"), read straight from the database.

A customer's events carry versions 1..N without a gap, N being its ownership row's version;
each event starts where the previous one ended; and replaying the events in version order gives
the row as it is (owner, territory, lock, source). A customer that is gone (deleted or merged
away) has a history that ends with the event that took it out of the pool.

What the schema guarantees is not checked here, since it cannot fail: one ownership row per
customer (its primary key), no version twice (a unique constraint), no row for a customer that
is gone (a cascading foreign key).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from territory_service.customers.models import Customer
from territory_service.ownership.models import Ownership, OwnershipEvent

# What an event sets and the row keeps: replaying these must give the current row.
REPLAYED = ("territory_id", "owner_id", "locked", "source", "rule_id", "ruleset_version")


@dataclass(frozen=True)
class History:
    customers: set[uuid.UUID]
    ownerships: dict[uuid.UUID, Any]
    events: dict[uuid.UUID, list[Any]]

    @property
    def event_ids(self) -> set[int]:
        return {event.id for events in self.events.values() for event in events}


async def read_history(connection: AsyncConnection) -> History:
    customers = set((await connection.execute(select(Customer.id))).scalars())
    ownerships = {
        row.customer_id: row for row in await connection.execute(select(Ownership.__table__))
    }
    events: dict[uuid.UUID, list[Any]] = defaultdict(list)
    rows = await connection.execute(
        select(OwnershipEvent.__table__).order_by(
            OwnershipEvent.customer_id, OwnershipEvent.version
        )
    )
    for row in rows:
        events[row.customer_id].append(row)
    return History(customers=customers, ownerships=ownerships, events=dict(events))


async def ownership_violations(connection: AsyncConnection) -> list[str]:
    """Every way the stored ownership breaks the rules, as readable lines (none: all is well)."""
    problems: list[str] = []
    history = await read_history(connection)
    for customer_id in sorted(history.customers | history.events.keys()):
        problems += _chain_violations(
            customer_id,
            history.events.get(customer_id, []),
            history.ownerships.get(customer_id),
            exists=customer_id in history.customers,
        )
    return problems


def _chain_violations(
    customer_id: uuid.UUID, events: list[Any], row: Any | None, *, exists: bool
) -> list[str]:
    name = f"customer {customer_id}"
    versions = [event.version for event in events]
    if versions != list(range(1, len(events) + 1)):
        return [f"{name}: event versions {versions} are not 1..{len(events)}"]
    problems: list[str] = []
    place: tuple[Any, Any] = (None, None)
    replayed: dict[str, Any] | None = None
    for event in events:
        if (event.from_territory_id, event.from_owner_id) != place:
            problems.append(
                f"{name}: version {event.version} starts from "
                f"{(event.from_territory_id, event.from_owner_id)}, the previous event ended at "
                f"{place}"
            )
        if replayed is None and events[0] is not event:
            problems.append(f"{name}: version {event.version} follows its removal")
        place = (event.territory_id, event.owner_id)
        replayed = None if event.territory_id is None else {f: getattr(event, f) for f in REPLAYED}
    if exists:
        if row is None:
            if events:
                problems.append(f"{name} exists and has {len(events)} events but no ownership row")
            return problems
        if row.version != len(events):
            problems.append(f"{name}: ownership version {row.version}, {len(events)} events")
        current = {f: getattr(row, f) for f in REPLAYED}
        if replayed != current:
            problems.append(f"{name}: replaying the events gives {replayed}, the row is {current}")
    elif events and replayed is not None:
        problems.append(f"{name} is gone but its history does not end with its removal")
    return problems
