"""The set-based writer of a pool run is a compare-and-set: it never overwrites a row that a
concurrent writer changed after the run read it, and writes an event only for what it wrote."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.customers.models import Customer
from territory_service.db import utcnow
from territory_service.engine.resolution import Decision, Source
from territory_service.jobs import service as jobs
from territory_service.jobs.models import Job, JobKind, JobStatus
from territory_service.ownership.changes import Attribution, Held
from territory_service.ownership.models import Ownership, OwnershipEvent
from territory_service.ownership.pool_run import Change, Decided, decide_all
from territory_service.ownership.pool_writes import apply_planned, plan_changes
from territory_service.ownership.resolver import resolve_customers
from territory_service.rulesets import activation
from tests.api.helpers import (
    activate,
    create_customer,
    create_owner,
    create_territory,
    list_all,
    ownership,
    place_customer,
)


def rule_decision(territory: dict[str, Any]) -> Decision:
    return Decision(uuid.UUID(territory["id"]), None, Source.RULE, None, 1, (), ())


async def write(app: FastAPI, changes: list[Change]) -> list[Change]:
    """Plan `changes` as one piece of a job's plan and apply it; return those lost."""
    async with app.state.session_factory() as session, session.begin():
        job = Job(kind=JobKind.SIMULATION, status=JobStatus.SUCCEEDED)  # holds the plan
        session.add(job)
        await session.flush()
        await plan_changes(session, changes, job_id=job.id, generation=1, piece=1, at=utcnow())
        by = Attribution.of(reason="test", actor=None)
        _, lost = await apply_planned(
            session, job_id=job.id, generation=1, piece=1, by=by, keep=False
        )
    return [change for change in changes if change.customer_id in lost]


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
    held = Held(1, uuid.UUID(here["id"]), None, None)
    changes = [Change(uuid.UUID(c["id"]), held, rule_decision(there)) for c in (moved, untouched)]

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

    lost = await write(app, [Change(uuid.UUID(customer["id"]), None, rule_decision(there))])

    assert len(lost) == 1
    assert await event_count(engine) == 0
    async with engine.connect() as connection:
        territory = (await connection.execute(select(Ownership.territory_id))).scalar_one()
    assert territory == uuid.UUID(here["id"])


async def test_an_owner_deactivated_after_the_run_began_receives_no_customers(
    client: httpx.AsyncClient, regions: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run read 华东's only member as active; they are deactivated before it decides. The
    write finds out, and those customers are resolved again: 华东's pool."""
    east = regions["east"]
    for owner_id in regions["owners"]:
        await client.delete(f"/v1/territories/{east['id']}/members/{owner_id}")
    await activate(client, regions["ruleset"])
    waiting = [(await create_customer(client, province="上海"))["id"] for _ in range(3)]
    only = (await create_owner(client))["id"]
    await client.put(f"/v1/territories/{east['id']}/members/{only}", json={})
    reached, gate = asyncio.Event(), asyncio.Event()
    real_decide_all = decide_all

    async def decide_after_the_gate(*args: Any, **kwargs: Any) -> AsyncIterator[Decided]:
        reached.set()
        await gate.wait()
        async for decided in real_decide_all(*args, **kwargs):
            yield decided

    monkeypatch.setattr(activation, "decide_all", decide_after_the_gate)
    started = await client.post(f"/v1/rulesets/{regions['ruleset']['id']}/activate")
    await reached.wait()  # the run has read its owners: `only` is active
    deactivated = await client.patch(f"/v1/owners/{only}", json={"active": False})
    gate.set()
    await jobs.wait_for_all()

    assert deactivated.status_code == 200, deactivated.text
    job = (await client.get(started.headers["location"])).json()
    assert job["status"] == "succeeded", job
    for customer_id in waiting:
        held = await ownership(client, customer_id)
        assert (held["territory_id"], held["owner_id"]) == (east["id"], None)
    assert not await list_all(client, "/v1/customers", owner_id=only)


async def test_a_subsidiary_resolved_with_its_root_follows_the_roots_new_place(
    client: httpx.AsyncClient, app: FastAPI, regions: dict[str, Any]
) -> None:
    """What a pool run does with the changes it lost: resolve them again together. A root and
    its subsidiary among them end up together, as resolving them one by one would leave them."""
    east = regions["east"]
    members = sorted(regions["owners"])
    for owner_id in members:
        await client.delete(f"/v1/territories/{east['id']}/members/{owner_id}")
    await activate(client, regions["ruleset"])
    root = await create_customer(client, province="上海")
    subsidiary = await create_customer(client, province="上海", parent_id=root["id"])
    assert (await ownership(client, subsidiary["id"]))["owner_id"] is None  # 华东's pool
    await client.put(f"/v1/territories/{east['id']}/members/{members[0]}", json={})

    async with app.state.session_factory() as session, session.begin():
        both = [await session.get(Customer, uuid.UUID(c["id"])) for c in (root, subsidiary)]
        await resolve_customers(session, [c for c in both if c], actor=None, reason="again")

    held = [await ownership(client, c["id"]) for c in (root, subsidiary)]
    assert [h["owner_id"] for h in held] == [members[0], members[0]]
    assert held[1]["source"] == "group"
