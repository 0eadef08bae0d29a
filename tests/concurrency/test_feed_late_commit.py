"""The change feed on PostgreSQL, when a writer commits late: an assignment that took its event's
id first is held open (`late_commits`) while later assignments commit and a consumer pages past
them. Once it commits, the consumer still gets its event, and every event exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from territory_service.config import Settings
from territory_service.jobs import service as jobs
from territory_service.main import create_app
from tests.api.helpers import CATCH_ALL, follow_feed
from tests.concurrency.late_commits import HELD, closed_gate
from tests.concurrency.servers import issue_admin_key

pytestmark = pytest.mark.postgresql

PAGE = 2  # the consumer reads small pages, so it pages through what is there


@pytest.fixture
async def client(fresh_postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=fresh_postgres_url, db_pool_size=5)
    key = await issue_admin_key(fresh_postgres_url)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://territory.test",
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        yield client
        await jobs.wait_for_all()


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.is_success, response.text
    created: dict[str, Any] = response.json()
    return created


async def world(client: httpx.AsyncClient) -> tuple[list[str], str]:
    """Four customers the active rules gave to a territory; the territory."""
    territory = await post(client, "/v1/territories", {"name": "华东"})
    owner = await post(client, "/v1/owners", {"external_id": "rep", "name": "销售"})
    member = f"/v1/territories/{territory['id']}/members/{owner['id']}"
    assert (await client.put(member, json={})).is_success
    ruleset = await post(
        client, "/v1/rulesets", {"name": "全部", "default_territory_id": territory["id"]}
    )
    rule = {"name": "全部", "priority": 1, "condition": CATCH_ALL, "territory_id": territory["id"]}
    await post(client, f"/v1/rulesets/{ruleset['id']}/rules", rule)
    await post(client, f"/v1/rulesets/{ruleset['id']}/activate", {})
    await jobs.wait_for_all()
    customers = []
    for number in range(4):
        body = {"source": "crm", "external_id": f"L{number}", "name": f"客户{number}"}
        customers.append((await post(client, "/v1/customers", body))["id"])
    return customers, territory["id"]


async def to_pool(
    client: httpx.AsyncClient, customer_id: str, territory_id: str, reason: str
) -> httpx.Response:
    return await client.put(
        f"/v1/customers/{customer_id}/ownership",
        json={"territory_id": territory_id, "owner_id": None, "reason": reason},
        headers={"If-Match": "*"},
    )


async def test_an_event_committed_after_later_ones_were_read_is_still_delivered_once(
    client: httpx.AsyncClient, fresh_postgres_url: str
) -> None:
    customers, territory_id = await world(client)
    seen, cursor = await follow_feed(client, None, limit=PAGE)
    assert len(seen) == len(customers)  # each customer's first placement

    async with closed_gate(fresh_postgres_url) as gate:
        late = asyncio.create_task(to_pool(client, customers[0], territory_id, HELD))
        assert await gate.wait_for_writers(timeout=5.0), "the late writer never reached the gate"
        for customer_id in customers[1:]:
            response = await to_pool(client, customer_id, territory_id, "准时")
            assert response.status_code == 200, response.text
        before_late, cursor = await follow_feed(client, cursor, limit=PAGE)
        assert not late.done()
    assert (await late).status_code == 200
    after_late, _ = await follow_feed(client, cursor, limit=PAGE)

    assert {event["customer_id"] for event in before_late} == set(customers[1:])
    delivered = seen + before_late + after_late
    held = [event for event in delivered if event["reason"] == HELD]
    assert len(held) == 1, "the late commit's event is delivered, once"
    # It really took its id first, and the consumer had read past it before it committed.
    assert held[0]["id"] < min(event["id"] for event in before_late)
    ids = [event["id"] for event in delivered]
    assert len(ids) == len(set(ids)) == len(customers) * 2, "every event exactly once"
