"""The set-based writer of a pool run is a compare-and-set: it never overwrites a row that a
concurrent writer changed after the run read it, and writes an event only for what it wrote."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.ownership.bulk import Change, write_changes
from territory_service.ownership.models import Ownership, OwnershipEvent
from territory_service.rules.resolution import Decision, Source
from tests.api.helpers import create_customer, create_territory, place_customer


def rule_decision(territory: dict[str, Any]) -> Decision:
    return Decision(uuid.UUID(territory["id"]), None, Source.RULE, None, 1, (), ())


async def write(app: FastAPI, changes: list[Change]) -> list[Change]:
    async with app.state.session_factory() as session, session.begin():
        return await write_changes(session, changes, actor=None, reason="test")


async def event_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count(OwnershipEvent.id)))).scalar_one())


async def test_a_row_changed_since_the_read_is_lost_not_overwritten(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> None:
    here, there = await create_territory(client), await create_territory(client)
    moved, untouched = await create_customer(client), await create_customer(client)
    for customer in (moved, untouched):
        await place_customer(engine, customer, here)
    async with engine.begin() as connection:  # a concurrent writer got to `untouched` first
        await connection.execute(
            update(Ownership)
            .where(Ownership.customer_id == uuid.UUID(untouched["id"]))
            .values(version=2)
        )
    before = (uuid.UUID(here["id"]), None)
    changes = [
        Change(uuid.UUID(c["id"]), 1, before, rule_decision(there)) for c in (moved, untouched)
    ]

    lost = await write(app, changes)

    assert [change.customer_id for change in lost] == [uuid.UUID(untouched["id"])]
    async with engine.connect() as connection:
        rows = dict(
            (await connection.execute(select(Ownership.customer_id, Ownership.territory_id))).all()
        )
        events = (await connection.execute(select(OwnershipEvent))).all()
    assert rows[uuid.UUID(moved["id"])] == uuid.UUID(there["id"])
    assert rows[uuid.UUID(untouched["id"])] == uuid.UUID(here["id"])
    assert [(e.customer_id, e.version) for e in events] == [(uuid.UUID(moved["id"]), 2)]


async def test_a_first_ownership_loses_to_a_row_created_meanwhile(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine
) -> None:
    here, there = await create_territory(client), await create_territory(client)
    customer = await create_customer(client)
    await place_customer(engine, customer, here)  # created after the run saw no row

    lost = await write(app, [Change(uuid.UUID(customer["id"]), None, None, rule_decision(there))])

    assert len(lost) == 1
    assert await event_count(engine) == 0
    async with engine.connect() as connection:
        territory = (await connection.execute(select(Ownership.territory_id))).scalar_one()
    assert territory == uuid.UUID(here["id"])
