"""Owners and ownership rows under concurrent writers on PostgreSQL: an owner cannot be
deactivated while customers are being given to them, and a claim does not deadlock with a
re-resolution of the same customer.

Each test holds one writer at a chosen point (a gate in a wrapped function) while the other
runs, so the interleaving is the same on every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from territory_service.jobs import service as jobs
from territory_service.owners import handover
from territory_service.ownership import repository, resolver
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_owner,
    list_all,
    ownership,
    pooled,
)
from tests.conftest import POSTGRESQL_ONLY

# Row locks are PostgreSQL's; SQLite runs one writer at a time.
pytestmark = POSTGRESQL_ONLY


def gated(
    real: Callable[..., Awaitable[Any]], reached: asyncio.Event, gate: asyncio.Event
) -> Callable[..., Awaitable[Any]]:
    """`real`, pausing after its first call returns until the gate opens."""
    armed = [True]

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        if armed[0]:
            armed[0] = False
            reached.set()
            await gate.wait()
        return result

    return wrapper


async def deactivate(client: httpx.AsyncClient, owner_id: str) -> httpx.Response:
    return await client.patch(f"/v1/owners/{owner_id}", json={"active": False})


# How often, and how many times, to look for the waiting statement before giving up. A bound on
# the search, not a claim about speed: the waiter is normally seen on the first few looks.
POLL_SECONDS, POLLS = 0.01, 3000


async def until_waiting_on_an_owner_lock(app: FastAPI, task: asyncio.Task[Any]) -> None:
    """Return once PostgreSQL shows a statement on `owners` blocked on a lock that another
    session holds; fail if `task` finishes first (it did not wait) or it never shows."""
    blocked = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(pid)) > 0"
        " AND query ILIKE '%owners%'"
    )
    async with app.state.engine.connect() as connection:
        for _ in range(POLLS):
            assert not task.done(), "the deactivation finished without waiting for the lock"
            if await connection.scalar(blocked):
                return
            await connection.rollback()  # a fresh snapshot of pg_stat_activity each look
            await asyncio.sleep(POLL_SECONDS)
    pytest.fail("the deactivation never waited on a lock on the owner")


async def test_deactivating_the_heir_of_a_running_hand_over_waits_and_is_refused(
    client: httpx.AsyncClient,
    pool: dict[str, Any],
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customers = [(await create_customer(client, province="上海"))["id"] for _ in range(2)]
    leaving = (await ownership(client, customers[0]))["owner_id"]
    heir = (await create_owner(client))["id"]
    await client.put(f"/v1/territories/{pool['east']['id']}/members/{heir}", json={})
    reached, gate = asyncio.Event(), asyncio.Event()
    monkeypatch.setattr(handover, "directory_for", gated(resolver.directory_for, reached, gate))

    started = await client.post(
        f"/v1/owners/{leaving}/handover", json={"to_owner_id": heir, "reason": "离职"}
    )
    await reached.wait()  # the chunk has chosen the heir and holds its lock on them
    refusal = asyncio.create_task(deactivate(client, heir))
    try:
        await until_waiting_on_an_owner_lock(app, refusal)  # it waits for the hand-over
    finally:
        gate.set()
    await jobs.wait_for_all()

    assert_problem(await refusal, 409, "still-referenced")
    job = (await client.get(started.headers["location"])).json()
    assert job["status"] == "succeeded", job
    assert (await client.get(f"/v1/owners/{heir}")).json()["active"] is True
    held = {c["id"] for c in await list_all(client, "/v1/customers", owner_id=heir)}
    assert set(customers) & {c for c in customers if c in held}
    assert not await list_all(client, "/v1/customers", owner_id=leaving)


async def test_deactivating_the_only_member_while_a_customer_resolves_to_them(
    client: httpx.AsyncClient,
    pool: dict[str, Any],
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    east = pool["east"]
    for owner_id in pool["owners"]:
        await client.delete(f"/v1/territories/{east['id']}/members/{owner_id}")
    only = (await create_owner(client))["id"]
    await client.put(f"/v1/territories/{east['id']}/members/{only}", json={})
    reached, gate = asyncio.Event(), asyncio.Event()
    monkeypatch.setattr(resolver, "directory_for", gated(resolver.directory_for, reached, gate))

    creating = asyncio.create_task(create_customer(client, province="上海"))
    await reached.wait()
    refusal = asyncio.create_task(deactivate(client, only))
    try:
        await until_waiting_on_an_owner_lock(app, refusal)
    finally:
        gate.set()
    created = await creating

    assert created["ownership"]["owner_id"] == only
    assert_problem(await refusal, 409, "still-referenced")
    assert (await client.get(f"/v1/owners/{only}")).json()["active"] is True


async def deadlocks(app: FastAPI) -> int:
    async with app.state.engine.connect() as connection:
        count = await connection.execute(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
        return int(count.scalar_one())


async def test_a_claim_and_a_re_resolution_of_one_customer_do_not_deadlock(
    client: httpx.AsyncClient,
    pool: dict[str, Any],
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    east, country = pool["east"], pool["country"]
    zhang, li = sorted(pool["owners"])
    await client.delete(f"/v1/territories/{east['id']}/members/{li}")
    await client.put(f"/v1/territories/{country['id']}/members/{zhang}", json={})
    (customer,) = await pooled(client, 1)
    before = await deadlocks(app)
    reached, gate = asyncio.Event(), asyncio.Event()
    real_get = repository.OwnershipRepository.get
    armed = [True]

    async def claim_pauses_holding_its_owner(
        self: repository.OwnershipRepository, customer_id: Any, *, for_update: bool = False
    ) -> Any:
        if armed[0] and for_update:
            armed[0] = False
            reached.set()
            await gate.wait()
        return await real_get(self, customer_id, for_update=for_update)

    monkeypatch.setattr(repository.OwnershipRepository, "get", claim_pauses_holding_its_owner)
    claiming = asyncio.create_task(
        client.post(f"/v1/customers/{customer}/claim", json={"owner_id": zhang})
    )
    await reached.wait()  # the claim holds zhang's owner row, not yet the ownership row
    moved = await client.patch(f"/v1/customers/{customer}", json={"province": "上海"})
    gate.set()
    claimed = await claiming

    assert moved.status_code == 200, moved.text  # resolved to 华东 and zhang meanwhile
    assert_problem(claimed, 409, "not-in-pool")
    assert await deadlocks(app) == before
    assert (await ownership(client, customer))["owner_id"] == zhang
