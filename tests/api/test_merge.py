"""Merging two records of one company: the survivor keeps its ownership, the other's history
is kept and closed, its subsidiaries and external ids move to the survivor."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from territory_service.security.scopes import Scope
from tests.api.helpers import (
    activate,
    assert_problem,
    create_customer,
    list_all,
)
from tests.conftest import KeyMaker, http_client
from tests.openapi_conformance import DeclaredResponses


async def merge(
    client: httpx.AsyncClient,
    survivor: dict[str, Any],
    merged: dict[str, Any],
    *,
    etag: str | None = None,
    **body: Any,
) -> httpx.Response:
    headers = {} if etag is None else {"If-Match": etag}
    return await client.post(
        f"/v1/customers/{survivor['id']}/merge",
        json={"customer_id": merged["id"]} | body,
        headers=headers,
    )


async def history(client: httpx.AsyncClient, customer: dict[str, Any]) -> list[dict[str, Any]]:
    """The customer's ownership events, read from the change feed (which keeps the events of
    customers that are gone)."""
    events: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 1000} | ({"after": after} if after else {})
        page = (await client.get("/v1/events", params=params)).json()
        events += [e for e in page["items"] if e["customer_id"] == customer["id"]]
        if not page["items"]:
            return events
        after = page["next_cursor"]


async def test_merge_keeps_the_survivors_ownership_and_closes_the_others_history(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    survivor = await create_customer(client, name="上海华东机械有限公司", province="上海")
    merged = await create_customer(client, name="上海华东机械集团", province="广东")
    survivor_history = await history(client, survivor)

    response = await merge(client, survivor, merged, etag='"1"', reason="同一家公司")

    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["etag"] == '"2"'
    assert body["version"] == 2
    assert body["ownership"] == survivor["ownership"]
    assert (body["name"], body["external_id"]) == (survivor["name"], survivor["external_id"])
    assert_problem(await client.get(f"/v1/customers/{merged['id']}"), 404, "not-found")
    assert await history(client, survivor) == survivor_history
    assert_problem(await client.get(f"/v1/customers/{merged['id']}/history"), 404, "not-found")
    events = await history(client, merged)
    assert [e["version"] for e in events] == [1, 2]
    last = events[-1]
    assert (last["source"], last["territory_id"], last["owner_id"]) == ("merge", None, None)
    assert (last["from_territory_id"], last["from_owner_id"]) == (
        regions["south"]["id"],
        regions["wang"]["id"],
    )
    assert last["reason"] == f"merged into {survivor['id']}: 同一家公司"
    feed = (await client.get("/v1/events", params={"limit": 1000})).json()["items"]
    assert feed[-1]["id"] == last["id"]


async def test_merging_resolves_the_pairs_duplicate_conflict(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    survivor = await create_customer(client, name="Acme Co., Ltd.", province="上海")
    merged = await create_customer(client, name="ACME Inc", province="广东")
    (conflict,) = await list_all(client, "/v1/conflicts", kind="duplicate_customer")
    (admin_key,) = await list_all(client, "/v1/api-keys")

    assert (await merge(client, survivor, merged)).status_code == 200

    closed = (await client.get(f"/v1/conflicts/{conflict['id']}")).json()
    assert closed["status"] == "resolved"
    assert closed["resolution_note"] == f"merged into {survivor['id']}"
    assert closed["closed_by_key_id"] == admin_key["id"]


async def test_the_merged_external_id_resolves_to_the_survivor(client: httpx.AsyncClient) -> None:
    survivor = await create_customer(client, external_id="S-1", tier="B")
    merged = await create_customer(client, external_id="M-1")
    assert (await merge(client, survivor, merged)).status_code == 200

    upsert = await client.post(
        "/v1/customers/batch",
        json={"items": [{"source": "crm", "external_id": "M-1", "name": "新名字", "tier": "A"}]},
    )

    (item,) = upsert.json()["items"]
    assert (item["status"], item["id"], item["version"]) == ("updated", survivor["id"], 3)
    fetched = (await client.get(f"/v1/customers/{survivor['id']}")).json()
    assert (fetched["external_id"], fetched["name"], fetched["tier"]) == ("S-1", "新名字", "A")
    assert [c["id"] for c in await list_all(client, "/v1/customers")] == [survivor["id"]]
    found = await list_all(client, "/v1/customers", source="crm", external_id="M-1")
    assert [c["id"] for c in found] == [survivor["id"]]
    assert await list_all(client, "/v1/customers", source="other", external_id="M-1") == []
    created = await client.post(
        "/v1/customers", json={"source": "crm", "external_id": "M-1", "name": "又一个"}
    )
    problem = assert_problem(created, 409, "already-exists")
    assert (problem["existing_id"], problem["field"]) == (survivor["id"], "external_id")


async def test_a_batch_naming_a_survivor_by_both_its_ids_updates_it_once(
    client: httpx.AsyncClient,
) -> None:
    survivor = await create_customer(client, external_id="S-2")
    merged = await create_customer(client, external_id="M-2")
    assert (await merge(client, survivor, merged)).status_code == 200

    response = await client.post(
        "/v1/customers/batch",
        json={
            "items": [
                {"source": "crm", "external_id": "S-2", "name": "甲", "tier": "A"},
                {"source": "crm", "external_id": "M-2", "name": "乙", "tier": "C"},
            ]
        },
    )

    first, second = response.json()["items"]
    assert (first["status"], second["status"]) == ("updated", "error")
    assert "items[0]" in second["detail"]
    assert (await client.get(f"/v1/customers/{survivor['id']}")).json()["tier"] == "A"


async def test_external_ids_follow_a_chain_of_merges(client: httpx.AsyncClient) -> None:
    first = await create_customer(client, external_id="A-1")
    second = await create_customer(client, external_id="A-2")
    third = await create_customer(client, external_id="A-3")
    assert (await merge(client, second, first)).status_code == 200

    assert (await merge(client, third, second)).status_code == 200

    for external_id in ("A-1", "A-2", "A-3"):
        found = await list_all(client, "/v1/customers", external_id=external_id)
        assert [c["id"] for c in found] == [third["id"]], external_id
    again = await merge(client, third, first)
    problem = assert_problem(again, 409, "already-merged")
    assert problem["survivor_id"] == third["id"]


async def test_subsidiaries_move_to_the_survivor_and_follow_its_owner(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    survivor = await create_customer(client, name="华东集团", province="上海")
    merged = await create_customer(client, name="华东集团有限公司", province="广东")
    child = await create_customer(client, province="广东", parent_id=merged["id"])
    grandchild = await create_customer(client, province="广东", parent_id=child["id"])
    assert child["ownership"]["owner_id"] == regions["wang"]["id"]

    assert (await merge(client, survivor, merged)).status_code == 200

    moved = (await client.get(f"/v1/customers/{child['id']}")).json()
    assert moved["parent_id"] == survivor["id"]
    assert moved["version"] == child["version"] + 1
    for customer in (child, grandchild):
        owned = (await client.get(f"/v1/customers/{customer['id']}")).json()["ownership"]
        assert (owned["owner_id"], owned["source"]) == (
            survivor["ownership"]["owner_id"],
            "group",
        )
        assert [e["version"] for e in await history(client, customer)] == [1, 2]


async def test_merges_that_make_no_sense_are_refused(client: httpx.AsyncClient) -> None:
    group = await create_customer(client)
    subsidiary = await create_customer(client, parent_id=group["id"])
    other = await create_customer(client)

    assert_problem(await merge(client, group, group), 422, "invalid-merge")
    assert_problem(await merge(client, subsidiary, group), 409, "hierarchy-cycle")
    unknown = await merge(client, group, {"id": str(uuid.uuid4())})
    assert assert_problem(unknown, 422, "invalid-reference")["errors"][0]["pointer"] == (
        "#/customer_id"
    )
    missing = await merge(client, {"id": str(uuid.uuid4())}, other)
    assert_problem(missing, 404, "not-found")
    stale = await merge(client, group, other, etag='"7"')
    assert assert_problem(stale, 412, "stale-version")["current_version"] == 1
    assert_problem(await merge(client, group, other, extra=1), 422, "validation-error")
    assert len(await list_all(client, "/v1/customers")) == 3


async def test_merging_a_subsidiary_into_its_group_company_is_allowed(
    client: httpx.AsyncClient,
) -> None:
    group = await create_customer(client)
    subsidiary = await create_customer(client, parent_id=group["id"])
    below = await create_customer(client, parent_id=subsidiary["id"])

    assert (await merge(client, group, subsidiary)).status_code == 200

    assert (await client.get(f"/v1/customers/{below['id']}")).json()["parent_id"] == group["id"]


async def test_a_confined_key_merges_only_within_its_territories(
    client: httpx.AsyncClient,
    regions: dict[str, Any],
    app: FastAPI,
    make_key: KeyMaker,
    declared_responses: DeclaredResponses,
) -> None:
    await activate(client, regions["ruleset"])
    east = await create_customer(client, name="苏州电子", province="上海")
    east_too = await create_customer(client, name="苏州电子有限公司", province="江苏")
    south = await create_customer(client, name="苏州电子集团", province="广东")
    south_child = await create_customer(client, parent_id=east_too["id"])
    ownership = await client.get(f"/v1/customers/{south_child['id']}/ownership")
    locked_south = await client.put(
        f"/v1/customers/{south_child['id']}/ownership",
        json={"reason": "华南跟进", "territory_id": regions["south"]["id"]},
        headers={"If-Match": ownership.headers["etag"]},
    )
    assert locked_south.status_code == 200, locked_south.text
    key = await make_key(
        Scope.CUSTOMERS_READ,
        Scope.CUSTOMERS_WRITE,
        territory_ids=[uuid.UUID(regions["east"]["id"])],
    )

    async with http_client(app, declared_responses, key) as confined:
        across = await merge(confined, east, south)
        hidden_survivor = await merge(confined, south, east)
        moves_hidden = await merge(confined, east, east_too)
        await client.patch(f"/v1/customers/{south_child['id']}", json={"parent_id": None})
        allowed = await merge(confined, east, east_too)

    assert_problem(across, 422, "invalid-reference")
    assert_problem(hidden_survivor, 404, "not-found")
    assert_problem(moves_hidden, 403, "out-of-scope")
    assert allowed.status_code == 200, allowed.text


async def test_concurrent_merges_of_one_pair_let_exactly_one_win(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    first = await create_customer(client, name="成都药业有限公司", province="上海")
    second = await create_customer(client, name="成都药业", province="广东")

    responses = await asyncio.gather(
        *(
            merge(client, first, second) if n % 2 else merge(client, second, first)
            for n in range(12)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, [r.text for r in responses]
    assert set(statuses) <= {200, 404, 409}, statuses
    remaining = await list_all(client, "/v1/customers")
    assert len(remaining) == 1
    survivor = remaining[0]
    gone = first if survivor["id"] == second["id"] else second
    assert [e["version"] for e in await history(client, survivor)] == [1]
    events = await history(client, gone)
    assert [(e["version"], e["source"]) for e in events] == [(1, "rule"), (2, "merge")]
    conflicts = await list_all(client, "/v1/conflicts", kind="duplicate_customer")
    assert [c["status"] for c in conflicts] == ["resolved"]
