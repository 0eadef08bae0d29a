"""What a key confined to territories sees and may change.

A confined key sees the customers owned in its territories' subtrees, those territories and
their members, and the owners who are members there. Anything else answers 404. A write that
would leave a customer outside the key's territories is refused with 403 `out-of-scope` and
changes nothing; so is making what would lie outside from the start (a root territory, an owner
in no territory).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.security.scopes import Scope
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_owner,
    create_territory,
    customer_body,
    list_all,
    place_customer,
)
from tests.conftest import KeyMaker, http_client
from tests.openapi_conformance import DeclaredResponses

WORK_SCOPES = [scope for scope in Scope if scope is not Scope.ADMIN]


@pytest.fixture
async def regions(client: httpx.AsyncClient, engine: AsyncEngine) -> dict[str, Any]:
    """全国 > 华东 > 上海, and 全国 > 华南; a customer and an owner in 上海 and in 华南."""
    country = await create_territory(client, name="全国")
    east = await create_territory(client, name="华东", parent_id=country["id"])
    shanghai = await create_territory(client, name="上海", parent_id=east["id"])
    south = await create_territory(client, name="华南", parent_id=country["id"])
    placed: dict[str, Any] = {
        "country": country,
        "east": east,
        "shanghai": shanghai,
        "south": south,
    }
    for name, territory in (("shanghai", shanghai), ("south", south)):
        owner = await create_owner(client)
        await client.put(f"/v1/territories/{territory['id']}/members/{owner['id']}", json={})
        customer = await create_customer(client, province=territory["name"])
        await place_customer(engine, customer, territory, owner)
        placed[f"{name}_owner"] = owner
        placed[f"{name}_customer"] = customer
    return placed


@pytest.fixture
async def east_client(
    app: FastAPI,
    declared_responses: DeclaredResponses,
    make_key: KeyMaker,
    regions: dict[str, Any],
) -> Any:
    key = await make_key(*WORK_SCOPES, territory_ids=[uuid.UUID(regions["east"]["id"])])
    async with http_client(app, declared_responses, key) as client:
        yield client


async def test_lists_show_only_what_lies_in_the_keys_subtrees(
    east_client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    customers = await list_all(east_client, "/v1/customers")
    territories = await list_all(east_client, "/v1/territories")
    owners = await list_all(east_client, "/v1/owners")

    assert [c["id"] for c in customers] == [regions["shanghai_customer"]["id"]]
    assert {t["name"] for t in territories} == {"华东", "上海"}
    assert [o["id"] for o in owners] == [regions["shanghai_owner"]["id"]]
    filtered = await list_all(east_client, "/v1/customers", territory_id=regions["south"]["id"])
    assert filtered == []


async def test_ids_outside_the_scope_answer_404(
    east_client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    for path in (
        f"/v1/customers/{regions['south_customer']['id']}",
        f"/v1/territories/{regions['south']['id']}",
        f"/v1/territories/{regions['country']['id']}",
        f"/v1/owners/{regions['south_owner']['id']}",
        f"/v1/territories/{regions['south']['id']}/members",
    ):
        assert_problem(await east_client.get(path), 404, "not-found")
    inside = await east_client.get(f"/v1/customers/{regions['shanghai_customer']['id']}")
    assert inside.status_code == 200


async def test_a_new_customer_outside_the_scope_is_refused_and_not_stored(
    east_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # Until it is resolved a new customer is owned in no territory, so it would lie outside.
    response = await east_client.post("/v1/customers", json=customer_body(external_id="N1"))

    assert_problem(response, 403, "out-of-scope")
    assert await list_all(client, "/v1/customers", external_id="N1") == []


async def test_a_confined_batch_updates_its_customers_and_refuses_the_rest_per_item(
    east_client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    mine, theirs = regions["shanghai_customer"], regions["south_customer"]
    items = [
        {"source": mine["source"], "external_id": mine["external_id"], "name": "新名字有限公司"},
        {"source": theirs["source"], "external_id": theirs["external_id"], "name": "改名"},
        customer_body(external_id="NEW-1"),
    ]

    result = (await east_client.post("/v1/customers/batch", json={"items": items})).json()

    assert [item["status"] for item in result["items"]] == ["updated", "error", "error"]
    assert theirs["id"] not in str(result)
    assert "outside your territories" in result["items"][1]["detail"]


async def test_a_clash_with_a_customer_outside_the_scope_does_not_name_it(
    east_client: httpx.AsyncClient, client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    theirs = regions["south_customer"]
    await client.patch(f"/v1/customers/{theirs['id']}", json={"registration_id": "91440000X1"})
    mine = regions["shanghai_customer"]

    response = await east_client.patch(
        f"/v1/customers/{mine['id']}", json={"registration_id": "91440000X1"}
    )

    problem = assert_problem(response, 409, "already-exists")
    assert problem["existing_id"] is None
    assert theirs["id"] not in response.text


async def test_territories_are_created_and_moved_only_inside_the_scope(
    east_client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    root = await east_client.post("/v1/territories", json={"name": "华北"})
    assert_problem(root, 403, "out-of-scope")
    outside = await east_client.post(
        "/v1/territories", json={"name": "广州", "parent_id": regions["south"]["id"]}
    )
    assert_problem(outside, 422, "invalid-reference")
    pudong = await east_client.post(
        "/v1/territories", json={"name": "浦东", "parent_id": regions["shanghai"]["id"]}
    )
    assert pudong.status_code == 201
    away = await east_client.patch(
        f"/v1/territories/{regions['shanghai']['id']}", json={"parent_id": regions["south"]["id"]}
    )
    assert_problem(away, 422, "invalid-reference")


async def test_owners_are_created_by_unconfined_keys_and_joined_by_confined_ones(
    east_client: httpx.AsyncClient, client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    refused = await east_client.post("/v1/owners", json={"external_id": "u9", "name": "新人"})
    assert_problem(refused, 403, "out-of-scope")
    newcomer = await create_owner(client)
    assert_problem(await east_client.get(f"/v1/owners/{newcomer['id']}"), 404, "not-found")

    joined = await east_client.put(
        f"/v1/territories/{regions['shanghai']['id']}/members/{newcomer['id']}", json={}
    )

    assert joined.status_code == 201
    assert (await east_client.get(f"/v1/owners/{newcomer['id']}")).status_code == 200


async def test_a_key_confined_to_several_territories_sees_all_of_them(
    app: FastAPI,
    declared_responses: DeclaredResponses,
    make_key: KeyMaker,
    regions: dict[str, Any],
) -> None:
    roots = [uuid.UUID(regions["shanghai"]["id"]), uuid.UUID(regions["south"]["id"])]
    key = await make_key(Scope.CUSTOMERS_READ, territory_ids=roots)
    async with http_client(app, declared_responses, key) as both:
        customers = await list_all(both, "/v1/customers")
    assert {c["id"] for c in customers} == {
        regions["shanghai_customer"]["id"],
        regions["south_customer"]["id"],
    }
