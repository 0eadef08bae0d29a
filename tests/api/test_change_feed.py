"""The change feed gives every ownership event exactly once, in order, to a consumer that follows
the cursor, also when a transaction commits an event with a smaller id after later ones."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.ownership.models import OwnershipEvent, OwnershipSource
from tests.api.helpers import activate, assert_problem, create_customer, follow_feed
from tests.conftest import POSTGRESQL_ONLY


async def test_a_consumer_sees_every_event_once_in_order(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    for province in ("上海", "江苏", "广东", "西藏"):
        await create_customer(client, province=province)
    await activate(client, regions["ruleset"])

    first, cursor = await follow_feed(client, None)
    customer = await create_customer(client, province="上海")
    second, cursor = await follow_feed(client, cursor)
    third, _ = await follow_feed(client, cursor)

    assert [e["customer_id"] for e in second] == [customer["id"]]
    assert third == []
    seen = first + second
    assert len(seen) == 5
    assert [e["position"] for e in seen] == sorted(e["position"] for e in seen)
    assert len({e["id"] for e in seen}) == len(seen)


async def test_a_bad_cursor_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/events", params={"after": "nonsense"})
    problem = assert_problem(response, 422, "invalid-cursor")
    assert problem["errors"][0]["parameter"] == "after"
    assert problem["errors"][0]["location"] == "query"


def event_row(version: int) -> dict[str, Any]:
    return {
        "customer_id": uuid.uuid4(),
        "version": version,
        "territory_id": uuid.uuid4(),
        "source": OwnershipSource.MANUAL,
        "locked": True,
    }


@POSTGRESQL_ONLY
async def test_an_event_committed_late_with_a_smaller_id_is_not_skipped(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    early = await engine.connect()
    transaction = await early.begin()
    smaller = (
        await early.execute(
            insert(OwnershipEvent).values(**event_row(1)).returning(OwnershipEvent.id)
        )
    ).scalar_one()
    async with engine.begin() as late:
        larger = (
            await late.execute(
                insert(OwnershipEvent).values(**event_row(1)).returning(OwnershipEvent.id)
            )
        ).scalar_one()
    assert smaller < larger

    before_commit, cursor = await follow_feed(client, None)
    await transaction.commit()
    await early.close()
    after_commit, _ = await follow_feed(client, cursor)

    assert [e["id"] for e in before_commit] == [larger]
    assert [e["id"] for e in after_commit] == [smaller]
    assert after_commit[0]["position"] > before_commit[0]["position"]
