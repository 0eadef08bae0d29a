"""Territories: the hierarchy and its members."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.ids import new_id
from territory_service.ownership.models import OwnershipSource
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_owner,
    create_territory,
    list_all,
    place_customer,
)


async def test_hierarchy_is_built_with_parent_ids(client: httpx.AsyncClient) -> None:
    country = await create_territory(client, name="全国", code="CN")
    east = await create_territory(client, name="华东", code="CN-EAST", parent_id=country["id"])
    shanghai = await create_territory(client, name="上海", parent_id=east["id"])

    children = await list_all(client, "/v1/territories", parent_id=east["id"])
    roots = await list_all(client, "/v1/territories", roots_only=True)
    assert [t["id"] for t in children] == [shanghai["id"]]
    assert [t["id"] for t in roots] == [country["id"]]
    assert shanghai["strategy"] == "round_robin"


async def test_unknown_parent_is_an_invalid_reference(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/territories", json={"name": "华南", "parent_id": str(new_id())}
    )
    assert_problem(response, 422, "invalid-reference")


async def test_moving_a_territory_under_its_own_subtree_is_refused(
    client: httpx.AsyncClient,
) -> None:
    east = await create_territory(client, name="华东")
    jiangsu = await create_territory(client, name="江苏", parent_id=east["id"])
    suzhou = await create_territory(client, name="苏州", parent_id=jiangsu["id"])

    for new_parent in (suzhou["id"], east["id"]):
        response = await client.patch(
            f"/v1/territories/{east['id']}", json={"parent_id": new_parent}
        )
        assert_problem(response, 409, "hierarchy-cycle")
    assert (await client.get(f"/v1/territories/{east['id']}")).json()["version"] == 1

    moved = await client.patch(f"/v1/territories/{suzhou['id']}", json={"parent_id": east["id"]})
    assert moved.json()["parent_id"] == east["id"]


async def test_territory_code_is_unique(client: httpx.AsyncClient) -> None:
    first = await create_territory(client, code="CN-SOUTH")
    duplicate = await client.post("/v1/territories", json={"name": "华南2", "code": "CN-SOUTH"})
    assert assert_problem(duplicate, 409, "already-exists")["existing_id"] == first["id"]


async def test_territory_with_children_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    parent = await create_territory(client)
    child = await create_territory(client, parent_id=parent["id"])

    assert_problem(await client.delete(f"/v1/territories/{parent['id']}"), 409, "still-referenced")
    assert (await client.delete(f"/v1/territories/{child['id']}")).status_code == 204
    assert (await client.delete(f"/v1/territories/{parent['id']}")).status_code == 204


async def test_territory_holding_customers_cannot_be_deleted(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    territory = await create_territory(client)
    customer = await create_customer(client)
    await place_customer(engine, customer, territory)

    response = await client.delete(f"/v1/territories/{territory['id']}")

    assert assert_problem(response, 409, "still-referenced")["customers"] == 1
    listed = await list_all(client, "/v1/customers", territory_id=territory["id"])
    assert [c["id"] for c in listed] == [customer["id"]]


async def test_customers_listed_by_territory_include_its_subterritories(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    east = await create_territory(client, name="华东")
    shanghai = await create_territory(client, name="上海", parent_id=east["id"])
    south = await create_territory(client, name="华南")
    owner = await create_owner(client)
    placed = {}
    for territory in (east, shanghai, south):
        customer = await create_customer(client)
        placed[territory["name"]] = customer["id"]
        await place_customer(engine, customer, territory, owner if territory is shanghai else None)

    subtree = await list_all(client, "/v1/customers", territory_id=east["id"])
    only = await list_all(
        client, "/v1/customers", territory_id=east["id"], include_subterritories=False
    )
    owned = await list_all(client, "/v1/customers", owner_id=owner["id"])
    assert {c["id"] for c in subtree} == {placed["华东"], placed["上海"]}
    assert [c["id"] for c in only] == [placed["华东"]]
    assert [c["id"] for c in owned] == [placed["上海"]]
    assert owned[0]["ownership"]["territory_id"] == shanghai["id"]


async def test_members_are_put_listed_changed_and_removed(client: httpx.AsyncClient) -> None:
    territory = await create_territory(client)
    owner = await create_owner(client)
    path = f"/v1/territories/{territory['id']}/members/{owner['id']}"

    created = await client.put(path, json={"role": "manager", "weight": 2})
    assert created.status_code == 201
    assert created.json()["role"] == "manager"
    replaced = await client.put(path, json={"weight": 3}, headers={"If-Match": '"1"'})
    assert replaced.status_code == 200
    assert (replaced.json()["role"], replaced.json()["weight"]) == ("member", 3)
    stale = await client.put(path, json={"weight": 1}, headers={"If-Match": '"1"'})
    assert_problem(stale, 412, "stale-version")

    members = await list_all(client, f"/v1/territories/{territory['id']}/members")
    assert [m["owner_id"] for m in members] == [owner["id"]]
    assert (await client.delete(path)).status_code == 204
    assert_problem(await client.get(path), 404, "not-found")


@pytest.mark.parametrize("body", [{"weight": 0}, {"role": "boss"}, {"capacity": -1}])
async def test_invalid_membership_is_rejected(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    territory = await create_territory(client)
    owner = await create_owner(client)
    response = await client.put(
        f"/v1/territories/{territory['id']}/members/{owner['id']}", json=body
    )
    assert_problem(response, 422, "validation-error")


async def test_membership_needs_an_existing_territory_and_owner(client: httpx.AsyncClient) -> None:
    territory = await create_territory(client)
    owner = await create_owner(client)
    missing = new_id()
    for path in (
        f"/v1/territories/{missing}/members/{owner['id']}",
        f"/v1/territories/{territory['id']}/members/{missing}",
    ):
        assert_problem(await client.put(path, json={}), 404, "not-found")


async def test_deleting_an_owner_who_owns_customers_is_refused_and_removes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    territory = await create_territory(client)
    owner = await create_owner(client)
    customer = await create_customer(client)
    await client.put(f"/v1/territories/{territory['id']}/members/{owner['id']}", json={})
    await place_customer(engine, customer, territory, owner, source=OwnershipSource.MANUAL)

    assert_problem(await client.delete(f"/v1/owners/{owner['id']}"), 409, "still-referenced")
    members = await list_all(client, f"/v1/territories/{territory['id']}/members")
    assert len(members) == 1
