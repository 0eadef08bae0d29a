"""Every kind of job ends with its progress complete: a client polling `GET /v1/jobs/{id}` sees
`done == total`, and `total` counts what the job covered."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from fastapi import FastAPI

from territory_service.db import utcnow
from territory_service.jobs.worker import Worker
from tests.api.helpers import activate, create_customer, ownership, stop_workers

TERMINAL = {"succeeded", "failed", "cancelled"}


async def polled_to_the_end(client: httpx.AsyncClient, started: httpx.Response) -> dict[str, Any]:
    """Poll the job a 202 answer points to, as a client would, until it has ended."""
    assert started.status_code == 202, started.text
    for _ in range(1000):
        response = await client.get(started.headers["location"])
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        assert job["done"] <= job["total"] or job["total"] == 0, job
        if job["status"] in TERMINAL:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"the job never ended: {job}")


def assert_complete(job: dict[str, Any], kind: str, covered: int) -> None:
    assert (job["kind"], job["status"]) == (kind, "succeeded"), job
    assert (job["done"], job["total"]) == (covered, covered), job


async def test_an_activation_of_one_chunk_ends_with_done_equal_to_total(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    for province in ("上海", "江苏", "广东", "西藏"):
        await create_customer(client, province=province)

    job = await polled_to_the_end(
        client, await client.post(f"/v1/rulesets/{regions['ruleset']['id']}/activate")
    )

    assert_complete(job, "activation", covered=4)


async def test_a_simulation_ends_with_done_equal_to_total(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    for province in ("上海", "广东", "西藏"):
        await create_customer(client, province=province)

    job = await polled_to_the_end(
        client, await client.post(f"/v1/rulesets/{regions['ruleset']['id']}/simulate")
    )

    assert_complete(job, "simulation", covered=3)


async def test_a_hand_over_ends_with_done_equal_to_total(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    ids = [(await create_customer(client, province="上海"))["id"] for _ in range(6)]
    owners = [(await ownership(client, i))["owner_id"] for i in ids]
    leaving = owners[0]
    (staying,) = regions["owners"] - {leaving}

    job = await polled_to_the_end(
        client,
        await client.post(
            f"/v1/owners/{leaving}/handover", json={"reason": "离职交接", "to_owner_id": staying}
        ),
    )

    assert_complete(job, "handover", covered=owners.count(leaving))


async def test_a_reclaim_ends_with_done_equal_to_total(
    client: httpx.AsyncClient, pool: dict[str, Any], app: FastAPI
) -> None:
    rules = {"reclaim_enabled": True, "reclaim_after_days": 30}
    response = await client.put(f"/v1/territories/{pool['country']['id']}/pool-rules", json=rules)
    assert response.status_code == 200, response.text
    for _ in range(3):
        await create_customer(client, province="上海")
    later = utcnow() + dt.timedelta(days=31)
    app.state.clock = lambda: later

    job = await polled_to_the_end(client, await client.post("/v1/pool/reclaim"))

    assert job["result"]["reclaimed"] == 3
    assert_complete(job, "reclaim", covered=3)


async def test_an_activation_counts_its_customers_as_its_pieces_are_applied(
    client: httpx.AsyncClient, regions: dict[str, Any], app: FastAPI
) -> None:
    """Planning sets `total` and applies nothing; each applied piece adds its customers."""
    await stop_workers(app)  # this test works the pieces itself, one at a time
    one_by_one = app.state.settings.model_copy(update={"activation_piece_customers": 1})
    worker = Worker(app.state.session_factory, one_by_one)
    for province in ("上海", "江苏", "广东"):
        await create_customer(client, province=province)
    started = await client.post(f"/v1/rulesets/{regions['ruleset']['id']}/activate")
    assert started.status_code == 202, started.text

    progress = []
    while await worker.run_one():
        job = (await client.get(started.headers["location"])).json()
        progress.append((job["status"], job["done"], job["total"]))

    assert progress == [
        ("queued", 0, 3),
        ("queued", 1, 3),
        ("queued", 2, 3),
        ("succeeded", 3, 3),
    ]
