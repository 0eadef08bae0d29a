"""Small builders shared by the API tests."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.coalescing import Coalescer
from territory_service.jobs import service as jobs
from territory_service.ownership.models import Ownership, OwnershipSource

_sequence = itertools.count(1)


def customer_body(**overrides: Any) -> dict[str, Any]:
    number = next(_sequence)
    body: dict[str, Any] = {
        "source": "crm",
        "external_id": f"C{number:06d}",
        "name": f"测试客户{number}有限公司",
        "province": "上海",
        "city": "上海",
        "industry": "manufacturing",
        "tier": "B",
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_customer(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    return await create(client, "/v1/customers", customer_body(**overrides))


async def create_owner(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    number = next(_sequence)
    body = {"external_id": f"u{number}", "name": f"销售{number}"} | overrides
    return await create(client, "/v1/owners", body)


async def create_territory(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    number = next(_sequence)
    body = {"name": f"区域{number}"} | overrides
    return await create(client, "/v1/territories", body)


async def list_all(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Follow `next_cursor` to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params) | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"urn:territory-service:problem:{slug}"
    assert problem["status"] == status
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


async def place_customer(
    engine: AsyncEngine,
    customer: dict[str, Any],
    territory: dict[str, Any],
    owner: dict[str, Any] | None = None,
    *,
    source: OwnershipSource = OwnershipSource.RULE,
) -> None:
    """Give a customer an ownership row directly, as the rule engine will."""
    async with engine.begin() as connection:
        await connection.execute(
            insert(Ownership).values(
                customer_id=uuid.UUID(customer["id"]),
                territory_id=uuid.UUID(territory["id"]),
                owner_id=uuid.UUID(owner["id"]) if owner else None,
                source=source,
                locked=source is not OwnershipSource.RULE,
                version=1,
            )
        )


CATCH_ALL: dict[str, Any] = {"any_of": [{"all_of": []}]}


def where(field: str, op: str, value: Any = None) -> dict[str, Any]:
    predicate = {"field": field, "op": op} | ({} if value is None else {"value": value})
    return {"any_of": [{"all_of": [predicate]}]}


async def add_rule(
    client: httpx.AsyncClient, ruleset: dict[str, Any], **body: Any
) -> dict[str, Any]:
    response = await client.post(f"/v1/rulesets/{ruleset['id']}/rules", json=body)
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


async def activate(client: httpx.AsyncClient, ruleset: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/v1/rulesets/{ruleset['id']}/activate")
    assert response.status_code == 202, response.text
    await jobs.wait_for_all()
    job = await client.get(response.headers["location"])
    finished: dict[str, Any] = job.json()
    assert finished["status"] == "succeeded", finished
    return finished


async def ownership(client: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/customers/{customer_id}/ownership")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def pooled(client: httpx.AsyncClient, count: int) -> list[str]:
    """Customers no rule matches: they wait in 全国's pool."""
    ids = [(await create_customer(client, province="西藏"))["id"] for _ in range(count)]
    for customer_id in ids:
        assert (await ownership(client, customer_id))["owner_id"] is None
    return ids


def answering_late(reads: Coalescer[Any, Any], seconds: float = 0.02) -> Coalescer[Any, Any]:
    """`reads` whose rounds take their snapshot at once and answer `seconds` later: a round then
    spans whatever the test does meanwhile, as a slow query would."""

    async def fetch(keys: frozenset[Any]) -> Any:
        # Asked in one go, the keys share one round of `reads`, hence one answer.
        answers = await asyncio.gather(*(reads.read(key) for key in keys))
        await asyncio.sleep(seconds)
        return answers[0]

    return Coalescer(fetch)


async def follow_feed(
    client: httpx.AsyncClient, cursor: str | None, limit: int = 3
) -> tuple[list[dict[str, Any]], str | None]:
    """Read the feed to its current end from `cursor`; the events and the cursor to poll with."""
    seen: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"after": cursor} if cursor else {})
        response = await client.get("/v1/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(page["items"])
        if not page["items"]:
            return seen, page["next_cursor"]
        cursor = page["next_cursor"]


async def stop_workers(app: FastAPI) -> None:
    """Stop the app's job workers, for a test that works the pieces itself."""
    for worker in app.state.workers:
        jobs.unregister(worker)
        await worker.stop()
