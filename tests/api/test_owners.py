"""Owners: sales reps and team queues."""

from __future__ import annotations

import httpx

from tests.api.helpers import assert_problem, create_owner, list_all


async def test_owner_lifecycle_create_deactivate_delete(client: httpx.AsyncClient) -> None:
    owner = await create_owner(client, external_id="u1001", name="张伟", capacity=200)
    assert (owner["active"], owner["capacity"], owner["version"]) == (True, 200, 1)

    response = await client.patch(
        f"/v1/owners/{owner['id']}", json={"active": False}, headers={"If-Match": '"1"'}
    )
    assert response.json()["active"] is False
    assert response.headers["etag"] == '"2"'

    assert (await client.delete(f"/v1/owners/{owner['id']}")).status_code == 204
    assert_problem(await client.get(f"/v1/owners/{owner['id']}"), 404, "not-found")


async def test_owner_external_id_is_unique(client: httpx.AsyncClient) -> None:
    first = await create_owner(client, external_id="u7")
    other = await create_owner(client, external_id="u8")

    duplicate = await client.post("/v1/owners", json={"external_id": "u7", "name": "李娜"})
    assert assert_problem(duplicate, 409, "already-exists")["existing_id"] == first["id"]
    renamed = await client.patch(f"/v1/owners/{other['id']}", json={"external_id": "u7"})
    assert assert_problem(renamed, 409, "already-exists")["existing_id"] == first["id"]


async def test_owner_fields_are_validated(client: httpx.AsyncClient) -> None:
    for body in (
        {"external_id": "u1", "name": "王芳", "capacity": -1},
        {"external_id": "u1", "name": "王芳", "email": "not-an-email"},
        {"external_id": "", "name": "王芳"},
        {"external_id": "u1", "name": "王芳", "id": "01930000-0000-7000-8000-000000000000"},
    ):
        assert_problem(await client.post("/v1/owners", json=body), 422, "validation-error")
    assert await list_all(client, "/v1/owners") == []


async def test_active_filter(client: httpx.AsyncClient) -> None:
    active = await create_owner(client)
    await create_owner(client, active=False)
    listed = await list_all(client, "/v1/owners", active=True)
    assert [o["id"] for o in listed] == [active["id"]]
