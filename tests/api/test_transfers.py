"""Transfers (归属变更): requested for up to 1,000 customers, decided once by an approver, and
applied atomically; a customer whose ownership moved meanwhile is a failed item, never moved."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from territory_service.security.scopes import Scope
from tests.api.helpers import activate, assert_problem, create_customer, create_owner, list_all
from tests.conftest import KeyMaker, http_client
from tests.openapi_conformance import DeclaredResponses


async def ownership_of(client: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/customers/{customer_id}/ownership")
    assert response.status_code == 200, response.text
    return dict(response.json(), etag=response.headers["etag"])


async def request(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/v1/transfers", json={"reason": "客户重新划分"} | body)


async def east_customers(
    client: httpx.AsyncClient, regions: dict[str, Any], count: int
) -> list[str]:
    await activate(client, regions["ruleset"])
    return [(await create_customer(client, province="上海"))["id"] for _ in range(count)]


async def test_approval_moves_unchanged_customers_and_fails_the_changed_one(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    ids = await east_customers(client, regions, 3)
    wang, south = regions["wang"], regions["south"]
    before = {i: await ownership_of(client, i) for i in ids}

    created = await request(
        client, customer_ids=ids, to_owner_id=wang["id"], to_territory_id=south["id"]
    )
    assert created.status_code == 201, created.text
    transfer = created.json()
    assert created.headers["location"] == f"/v1/transfers/{transfer['id']}"
    assert (transfer["status"], transfer["item_count"]) == ("pending", 3)
    assert {i["customer_id"]: i["expected_version"] for i in transfer["items"]} == {
        i: before[i]["version"] for i in ids
    }
    for customer_id in ids:  # nothing moves before the approval
        assert (await ownership_of(client, customer_id))["version"] == before[customer_id][
            "version"
        ]

    changed = ids[1]  # someone reassigns one customer while the transfer waits
    reassigned = await client.put(
        f"/v1/customers/{changed}/ownership",
        json={"reason": "key account", "territory_id": regions["country"]["id"]},
        headers={"If-Match": before[changed]["etag"]},
    )
    assert reassigned.status_code == 200, reassigned.text

    approved = await client.post(f"/v1/transfers/{transfer['id']}/approve", json={"note": "同意"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["failed_count"], body["decision_note"]) == ("applied", 1, "同意")
    outcome = {item["customer_id"]: (item["status"], item["failure"]) for item in body["items"]}
    assert outcome[changed][0] == "failed"
    assert "changed" in outcome[changed][1]
    for customer_id in set(ids) - {changed}:
        assert outcome[customer_id] == ("applied", None)
        now = await ownership_of(client, customer_id)
        assert (now["territory_id"], now["owner_id"], now["source"], now["locked"]) == (
            south["id"],
            wang["id"],
            "transfer",
            True,
        )
        history = (await client.get(f"/v1/customers/{customer_id}/history")).json()["items"]
        assert [e["version"] for e in history] == [1, 2]
        assert history[-1]["reason"].startswith(f"transfer {transfer['id']}")
    kept = await ownership_of(client, changed)
    assert (kept["territory_id"], kept["source"]) == (regions["country"]["id"], "manual")

    again = await client.post(f"/v1/transfers/{transfer['id']}/approve")
    assert_problem(again, 409, "transfer-not-pending")


async def test_a_request_that_cannot_be_applied_is_refused_whole(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    ids = await east_customers(client, regions, 2)
    wang, south = regions["wang"], regions["south"]
    unknown = str(uuid.uuid4())

    missing = await request(
        client, customer_ids=[ids[0], unknown], to_owner_id=wang["id"], to_territory_id=south["id"]
    )
    not_member = await request(client, customer_ids=ids, to_owner_id=wang["id"])
    twice = await request(client, customer_ids=[ids[0], ids[0]], to_owner_id=wang["id"])
    too_many = await request(
        client, customer_ids=[str(uuid.uuid4()) for _ in range(1001)], to_owner_id=wang["id"]
    )
    no_owner = await request(client, customer_ids=ids, to_owner_id=unknown)

    problem = assert_problem(missing, 422, "transfer-refused")
    assert [e["pointer"] for e in problem["errors"]] == ["#/customer_ids/1"]
    problem = assert_problem(not_member, 422, "transfer-refused")
    assert [e["pointer"] for e in problem["errors"]] == ["#/customer_ids/0", "#/customer_ids/1"]
    assert_problem(twice, 422, "validation-error")
    assert_problem(too_many, 422, "validation-error")
    problem = assert_problem(no_owner, 422, "invalid-reference")
    assert problem["errors"][0]["pointer"] == "#/to_owner_id"
    assert await list_all(client, "/v1/transfers") == []


async def test_rejected_and_cancelled_transfers_move_nothing(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    ids = await east_customers(client, regions, 2)
    wang, south = regions["wang"], regions["south"]
    target = {"to_owner_id": wang["id"], "to_territory_id": south["id"]}
    first = (await request(client, customer_ids=ids[:1], **target)).json()
    second = (await request(client, customer_ids=ids[1:], **target)).json()

    rejected = await client.post(f"/v1/transfers/{first['id']}/reject", json={"note": "不合适"})
    cancelled = await client.post(
        f"/v1/transfers/{second['id']}/cancel", headers={"If-Match": '"1"'}
    )
    late = await client.post(f"/v1/transfers/{first['id']}/approve")

    assert rejected.json()["status"] == "rejected"
    assert cancelled.json()["status"] == "cancelled"
    assert_problem(late, 409, "transfer-not-pending")
    for customer_id in ids:
        assert (await ownership_of(client, customer_id))["version"] == 1
    assert [t["id"] for t in await list_all(client, "/v1/transfers", status="rejected")] == [
        first["id"]
    ]


async def test_listing_filters_by_status_owner_and_territory(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    ids = await east_customers(client, regions, 2)
    wang, south, east = regions["wang"], regions["south"], regions["east"]
    from_owner = (await ownership_of(client, ids[0]))["owner_id"]
    other = next(iter(regions["owners"] - {from_owner}))
    to_wang = (
        await request(
            client, customer_ids=ids[:1], to_owner_id=wang["id"], to_territory_id=south["id"]
        )
    ).json()
    within_east = (
        await request(
            client,
            customer_ids=[i for i in ids if (await ownership_of(client, i))["owner_id"] != other],
            to_owner_id=other,
        )
    ).json()

    async def listed(**params: Any) -> set[str]:
        return {t["id"] for t in await list_all(client, "/v1/transfers", **params)}

    assert await listed(owner_id=wang["id"]) == {to_wang["id"]}
    assert await listed(owner_id=from_owner) == {to_wang["id"], within_east["id"]}
    assert await listed(territory_id=south["id"]) == {to_wang["id"]}
    assert await listed(territory_id=east["id"]) == {to_wang["id"], within_east["id"]}
    assert await listed(status="applied") == set()


async def test_acting_for_a_person_they_must_manage_the_target_territory(
    client: httpx.AsyncClient,
    regions: dict[str, Any],
    app: FastAPI,
    declared_responses: DeclaredResponses,
    make_key: KeyMaker,
) -> None:
    ids = await east_customers(client, regions, 1)
    wang, south, country = regions["wang"], regions["south"], regions["country"]
    rep, boss = await create_owner(client), await create_owner(client)
    await client.put(f"/v1/territories/{south['id']}/members/{rep['id']}", json={})
    await client.put(
        f"/v1/territories/{country['id']}/members/{boss['id']}", json={"role": "manager"}
    )
    transfer = (
        await request(client, customer_ids=ids, to_owner_id=wang["id"], to_territory_id=south["id"])
    ).json()
    key = await make_key(Scope.TRANSFERS_APPROVE, Scope.ACT_AS, Scope.CUSTOMERS_READ)

    async with http_client(app, declared_responses, key) as crm:
        as_rep = await crm.post(
            f"/v1/transfers/{transfer['id']}/approve",
            headers={"X-Act-As": rep["external_id"]},
        )
        as_boss = await crm.post(
            f"/v1/transfers/{transfer['id']}/approve",
            headers={"X-Act-As": boss["external_id"]},
        )

    assert_problem(as_rep, 403, "forbidden")
    assert as_boss.status_code == 200, as_boss.text
    assert as_boss.json()["decided_by_owner_id"] == boss["id"]
    assert (await ownership_of(client, ids[0]))["owner_id"] == wang["id"]


async def test_a_group_root_carries_its_subsidiaries_and_a_locked_one_splits_the_group(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    wang, south = regions["wang"], regions["south"]
    root = await create_customer(client, province="上海")
    child = await create_customer(client, province="上海", parent_id=root["id"])
    grandchild = await create_customer(client, province="江苏", parent_id=child["id"])
    locked = await create_customer(client, province="上海", parent_id=root["id"])
    etag = (await ownership_of(client, locked["id"]))["etag"]
    await client.put(
        f"/v1/customers/{locked['id']}/ownership",
        json={"reason": "kept", "territory_id": regions["country"]["id"]},
        headers={"If-Match": etag},
    )

    transfer = (
        await request(
            client, customer_ids=[root["id"]], to_owner_id=wang["id"], to_territory_id=south["id"]
        )
    ).json()
    approved = await client.post(f"/v1/transfers/{transfer['id']}/approve")

    assert approved.status_code == 200, approved.text
    for follower in (child, grandchild):
        now = await ownership_of(client, follower["id"])
        assert (now["territory_id"], now["owner_id"], now["source"], now["locked"]) == (
            south["id"],
            wang["id"],
            "group",
            False,
        )
    assert (await ownership_of(client, locked["id"]))["territory_id"] == regions["country"]["id"]
    splits = await list_all(client, "/v1/conflicts", kind="group_split")
    assert [(c["customer_ids"], c["details"]["group_root_id"]) for c in splits] == [
        ([locked["id"]], root["id"])
    ]


async def test_concurrent_decisions_decide_once_and_overlapping_transfers_move_once(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    ids = await east_customers(client, regions, 4)
    wang, south = regions["wang"], regions["south"]
    target = {"to_owner_id": wang["id"], "to_territory_id": south["id"]}
    single = (await request(client, customer_ids=ids[:2], **target)).json()
    overlapping = [
        (await request(client, customer_ids=ids[2:], **target)).json(),
        (await request(client, customer_ids=ids[3:], **target)).json(),
    ]

    decisions = await asyncio.gather(
        *(
            client.post(f"/v1/transfers/{single['id']}/{verb}")
            for verb in ["approve"] * 6 + ["reject", "cancel"]
        )
    )
    both = await asyncio.gather(
        *(client.post(f"/v1/transfers/{t['id']}/approve") for t in overlapping)
    )

    statuses = sorted(r.status_code for r in decisions)
    assert statuses == [200] + [409] * 7, [r.text for r in decisions]
    for response in decisions:
        if response.status_code == 409:
            assert response.json()["type"].endswith(("transfer-not-pending", "concurrent-update"))
    assert all(r.status_code == 200 for r in both), [r.text for r in both]
    applied = [
        item["customer_id"]
        for response in both
        for item in response.json()["items"]
        if item["status"] == "applied"
    ]
    assert sorted(applied) == sorted(set(applied))
    assert set(applied) == set(ids[2:])
    for customer_id in ids[2:]:
        history = (await client.get(f"/v1/customers/{customer_id}/history")).json()["items"]
        assert [e["version"] for e in history] == [1, 2]


async def test_a_confined_key_decides_only_transfers_wholly_within_its_territories(
    client: httpx.AsyncClient,
    regions: dict[str, Any],
    app: FastAPI,
    declared_responses: DeclaredResponses,
    make_key: KeyMaker,
) -> None:
    await activate(client, regions["ruleset"])
    east, south = regions["east"], regions["south"]
    in_east = (await create_customer(client, province="上海"))["id"]
    in_south = (await create_customer(client, province="广东"))["id"]
    heir = await create_owner(client)
    for territory in (east, south):
        await client.put(f"/v1/territories/{territory['id']}/members/{heir['id']}", json={})
    mixed = (await request(client, customer_ids=[in_east, in_south], to_owner_id=heir["id"])).json()
    key = await make_key(
        Scope.TRANSFERS_APPROVE, Scope.CUSTOMERS_READ, territory_ids=[uuid.UUID(east["id"])]
    )

    async with http_client(app, declared_responses, key) as confined:
        seen = await confined.get(f"/v1/transfers/{mixed['id']}")
        approved = await confined.post(f"/v1/transfers/{mixed['id']}/approve")

    assert seen.status_code == 200
    assert_problem(approved, 403, "out-of-scope")
    for customer_id in (in_east, in_south):
        assert (await ownership_of(client, customer_id))["owner_id"] != heir["id"]


async def test_an_owner_who_was_a_transfer_target_can_still_be_deleted(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    ids = await east_customers(client, regions, 1)
    heir = await create_owner(client)
    await client.put(f"/v1/territories/{regions['east']['id']}/members/{heir['id']}", json={})
    transfer = (await request(client, customer_ids=ids, to_owner_id=heir["id"])).json()
    await client.post(f"/v1/transfers/{transfer['id']}/cancel")

    deleted = await client.delete(f"/v1/owners/{heir['id']}")

    assert deleted.status_code == 204, deleted.text
    kept = (await client.get(f"/v1/transfers/{transfer['id']}")).json()
    assert (kept["status"], kept["to_owner_id"]) == ("cancelled", heir["id"])
