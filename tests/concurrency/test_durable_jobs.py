"""Long work survives the replica doing it: three `territory-service serve` processes on one
PostgreSQL share a re-division, the one holding a piece is killed with SIGKILL while it holds
it, and another replica carries the job to its end once the lease lapses. The outcome is the
one an uninterrupted run gives: exactly the moves a simulation of the same rule set predicts,
each written once with its one event. A replica stopped with SIGTERM hands its piece back at
once instead of letting the lease run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.api.helpers import where
from tests.concurrency.invariants import ownership_violations
from tests.concurrency.servers import Server, issue_admin_key, running_servers
from tests.postgres_server import to_asyncpg_dsn

pytestmark = [pytest.mark.postgresql, pytest.mark.long]

CUSTOMERS = 3000
PROVINCES = ["上海", "江苏", "广东", "广西"]
WAIT_SECONDS = 120.0
# Small pieces, so that the job has many and a replica is caught holding one; a short lease,
# so that the test waits little for it to lapse.
SERVER_SETTINGS = {
    "db_pool_size": 5,  # three servers beside another test worker's: within max_connections
    "db_max_overflow": 5,
    "activation_piece_changes": 40,
    "activation_piece_customers": 200,
    "job_lease_seconds": 2,
    "job_poll_seconds": 0.1,
    "pool_reclaim_interval_seconds": 0,
}


async def post(client: httpx.AsyncClient, path: str, **body: Any) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.is_success, f"POST {path}: {response.status_code} {response.text}"
    result: dict[str, Any] = response.json()
    return result | {"location": response.headers.get("location")}


async def finished(client: httpx.AsyncClient, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        job: dict[str, Any] = (await client.get(location)).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"the job never ended: {job}"
        await asyncio.sleep(0.05)


async def two_divisions(client: httpx.AsyncClient) -> dict[str, Any]:
    """Customers in four provinces divided by region; the second rule set moves two provinces
    to other regions, so that about half the customers change territory and owner."""
    country = await post(client, "/v1/territories", name="全国")
    regions = {}
    for name in ("华东", "华南"):
        region = await post(client, "/v1/territories", name=name, parent_id=country["id"])
        for n in range(3):
            owner = await post(client, "/v1/owners", external_id=f"{name}{n}", name=f"{name}{n}")
            added = await client.put(
                f"/v1/territories/{region['id']}/members/{owner['id']}", json={}
            )
            assert added.is_success, added.text
        regions[name] = region
    items = [
        {"source": "crm", "external_id": f"D{n:05d}", "name": f"客户{n}", "province": province}
        for n, province in enumerate(PROVINCES[n % 4] for n in range(CUSTOMERS))
    ]
    for start in range(0, CUSTOMERS, 1000):
        batch = await post(client, "/v1/customers/batch", items=items[start : start + 1000])
        assert batch["created"] == len(items[start : start + 1000]), batch
    rulesets: list[dict[str, Any]] = []
    for east in (["上海", "江苏"], ["上海", "广西"]):
        south = [p for p in PROVINCES if p not in east]
        ruleset = await post(
            client, "/v1/rulesets", name=f"分区{len(rulesets)}", default_territory_id=country["id"]
        )
        for name, provinces in (("华东", east), ("华南", south)):
            await post(
                client,
                f"/v1/rulesets/{ruleset['id']}/rules",
                name=name,
                priority=10,
                condition=where("province", "in", provinces),
                territory_id=regions[name]["id"],
            )
        rulesets.append(ruleset)
    return {"rulesets": rulesets}


async def places(dsn: str) -> dict[uuid.UUID, tuple[str, str | None]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT customer_id, territory_id::text, owner_id::text FROM ownerships"
        )
        return {row[0]: (row[1], row[2]) for row in rows}
    finally:
        await connection.close()


async def moves_predicted(client: httpx.AsyncClient, ruleset: dict[str, Any]) -> set[Any]:
    simulation = await post(client, f"/v1/rulesets/{ruleset['id']}/simulate")
    job = await finished(client, simulation["location"])
    assert job["status"] == "succeeded", job
    moves, cursor = set(), None
    while True:
        params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"/v1/simulations/{job['id']}/moves", params=params)).json()
        moves |= {
            (uuid.UUID(m["customer_id"]), m["territory_id"], m["owner_id"]) for m in page["items"]
        }
        cursor = page["next_cursor"]
        if cursor is None:
            return moves


async def holder_of_a_piece(dsn: str, step: str) -> str:
    """The replica that holds a live lease on a piece of `step`, as soon as one does."""
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            holder = await connection.fetchval(
                "SELECT lease_holder FROM job_pieces WHERE step = $1 AND done_at IS NULL "
                "AND lease_expires_at > now() LIMIT 1",
                step,
            )
            if holder is not None:
                return str(holder)
            await asyncio.sleep(0.002)
        raise AssertionError(f"no replica was seen holding a piece of {step!r}")
    finally:
        await connection.close()


def process_of(holder: str, servers: list[Server]) -> Server:
    pid = int(holder.split(":")[1])
    (server,) = [s for s in servers if s.process.pid == pid]
    return server


@contextlib.asynccontextmanager
async def replicas(
    url: str, log_dir: Path, count: int, **settings: Any
) -> AsyncIterator[list[tuple[Server, httpx.AsyncClient]]]:
    """`count` servers on the database with an admin client each."""
    headers = {"Authorization": f"Bearer {await issue_admin_key(url)}"}
    async with running_servers(url, count, log_dir, **(SERVER_SETTINGS | settings)) as servers:
        clients = [httpx.AsyncClient(base_url=s.base_url, headers=headers) for s in servers]
        try:
            yield list(zip(servers, clients, strict=True))
        finally:
            for client in clients:
                await client.aclose()


def other_than(pairs: list[tuple[Server, httpx.AsyncClient]], gone: Server) -> httpx.AsyncClient:
    return next(client for server, client in pairs if server is not gone)


async def assert_one_event_per_change(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            assert await ownership_violations(connection) == []
    finally:
        await engine.dispose()


async def test_a_re_division_finishes_on_other_replicas_when_the_one_holding_a_piece_is_killed(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    dsn = to_asyncpg_dsn(fresh_postgres_url)
    async with replicas(fresh_postgres_url, tmp_path, 3) as pairs:
        servers, clients = [server for server, _ in pairs], [client for _, client in pairs]
        world = await two_divisions(clients[0])
        first, second = world["rulesets"]
        started = await post(clients[0], f"/v1/rulesets/{first['id']}/activate")
        assert (await finished(clients[1], started["location"]))["status"] == "succeeded"
        before = await places(dsn)
        predicted = await moves_predicted(clients[2], second)

        started = await post(clients[0], f"/v1/rulesets/{second['id']}/activate")
        victim = process_of(await holder_of_a_piece(dsn, "apply"), servers)
        os.kill(victim.process.pid, signal.SIGKILL)
        job = await finished(other_than(pairs, victim), started["location"])

    assert victim.process.wait() == -signal.SIGKILL
    assert job["status"] == "succeeded", job
    assert (job["done"], job["total"]) == (CUSTOMERS, CUSTOMERS)
    after = await places(dsn)
    moved = {(c, *place) for c, place in after.items() if before[c] != place}
    assert 0 < len(moved) < CUSTOMERS
    assert moved == predicted
    assert job["result"]["changed"] == len(moved)
    await assert_one_event_per_change(fresh_postgres_url)


async def test_a_replica_told_to_stop_hands_its_piece_back_at_once(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    """With a lease of ten minutes, the job can only finish in this test's lifetime if the
    stopped replica gave its piece back rather than letting the lease run out."""
    dsn = to_asyncpg_dsn(fresh_postgres_url)
    async with replicas(fresh_postgres_url, tmp_path, 2, job_lease_seconds=600) as pairs:
        servers, clients = [server for server, _ in pairs], [client for _, client in pairs]
        world = await two_divisions(clients[0])
        started = await post(clients[0], f"/v1/rulesets/{world['rulesets'][0]['id']}/activate")
        holder = await holder_of_a_piece(dsn, "apply")
        stopped = process_of(holder, servers)
        stopped.process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then raises the signal again to exit by it.
        assert stopped.process.wait() == -signal.SIGTERM
        connection = await asyncpg.connect(dsn)
        try:
            still_held = await connection.fetchval(
                "SELECT count(*) FROM job_pieces WHERE lease_holder = $1 AND done_at IS NULL",
                holder,
            )
        finally:
            await connection.close()
        assert still_held == 0
        job = await finished(other_than(pairs, stopped), started["location"])

    assert job["status"] == "succeeded", job
    assert (job["done"], job["total"]) == (CUSTOMERS, CUSTOMERS)
    await assert_one_event_per_change(fresh_postgres_url)


async def one_owner_holding_everything(client: httpx.AsyncClient) -> dict[str, Any]:
    """CUSTOMERS customers in one region, all held by one owner; a second owner joins after."""
    country = await post(client, "/v1/territories", name="全国")
    east = await post(client, "/v1/territories", name="华东", parent_id=country["id"])
    leaving, heir = [
        await post(client, "/v1/owners", external_id=name, name=name) for name in ("张", "李")
    ]
    path = f"/v1/territories/{east['id']}/members"
    assert (await client.put(f"{path}/{leaving['id']}", json={})).is_success
    ruleset = await post(client, "/v1/rulesets", name="一区", default_territory_id=east["id"])
    await post(
        client,
        f"/v1/rulesets/{ruleset['id']}/rules",
        name="华东",
        priority=10,
        condition=where("province", "eq", "上海"),
        territory_id=east["id"],
    )
    started = await post(client, f"/v1/rulesets/{ruleset['id']}/activate")
    assert (await finished(client, started["location"]))["status"] == "succeeded"
    items = [
        {"source": "crm", "external_id": f"H{n:05d}", "name": f"客户{n}", "province": "上海"}
        for n in range(CUSTOMERS)
    ]
    for start in range(0, CUSTOMERS, 1000):
        await post(client, "/v1/customers/batch", items=items[start : start + 1000])
    assert (await client.put(f"{path}/{heir['id']}", json={})).is_success
    return {"east": east, "leaving": leaving, "heir": heir}


async def kill_the_holder_of(dsn: str, step: str, servers: list[Server]) -> Server:
    victim = process_of(await holder_of_a_piece(dsn, step), servers)
    os.kill(victim.process.pid, signal.SIGKILL)
    assert victim.process.wait() == -signal.SIGKILL
    return victim


async def sources_of_last_changes(dsn: str) -> dict[str, int]:
    """How many customers' latest event has each source, and how many events each has."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT DISTINCT ON (customer_id) source FROM ownership_events "
            "ORDER BY customer_id, version DESC"
        )
        counts: dict[str, int] = {}
        for row in rows:
            counts[row[0]] = counts.get(row[0], 0) + 1
        return counts
    finally:
        await connection.close()


async def test_a_hand_over_and_a_reclaim_finish_on_other_replicas_when_one_is_killed(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    dsn = to_asyncpg_dsn(fresh_postgres_url)
    async with replicas(fresh_postgres_url, tmp_path, 3) as pairs:
        alive = [server for server, _ in pairs]
        client = pairs[0][1]
        world = await one_owner_holding_everything(client)
        handover = await post(
            client,
            f"/v1/owners/{world['leaving']['id']}/handover",
            reason="离职交接",
            to_owner_id=world["heir"]["id"],
        )
        alive.remove(victim := await kill_the_holder_of(dsn, "move", alive))
        client = other_than(pairs, victim)
        handed = await finished(client, handover["location"])
        after_handover = await places(dsn)

        rules = {"reclaim_enabled": True, "reclaim_after_days": 30}
        path = f"/v1/territories/{world['east']['id']}/pool-rules"
        assert (await client.put(path, json=rules)).is_success
        connection = await asyncpg.connect(dsn)
        try:  # every hold began two months ago
            await connection.execute(
                "UPDATE ownerships SET held_since = now() - interval '60 days'"
            )
        finally:
            await connection.close()
        reclaim = await post(client, "/v1/pool/reclaim")
        alive.remove(victim := await kill_the_holder_of(dsn, "sweep", alive))
        survivor = next(server for server in alive)
        reclaimed = await finished(next(c for s, c in pairs if s is survivor), reclaim["location"])

    assert handed["status"] == "succeeded", handed
    assert handed["result"] == {"kind": "handover", "moved": CUSTOMERS, "to_pool": 0}
    assert set(after_handover.values()) == {(world["east"]["id"], world["heir"]["id"])}
    assert reclaimed["status"] == "succeeded", reclaimed
    assert reclaimed["result"] == {"kind": "reclaim", "reclaimed": CUSTOMERS}
    assert set((await places(dsn)).values()) == {(world["east"]["id"], None)}
    assert await sources_of_last_changes(dsn) == {"reclaim": CUSTOMERS}
    await assert_one_event_per_change(fresh_postgres_url)
