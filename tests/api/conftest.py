"""Fixtures shared by the API tests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import activate, add_rule, create_owner, create_territory, where


@pytest.fixture
async def regions(client: httpx.AsyncClient) -> dict[str, Any]:
    country = await create_territory(client, name="全国")
    east = await create_territory(client, name="华东", parent_id=country["id"])
    south = await create_territory(
        client, name="华南", parent_id=country["id"], strategy="least_loaded"
    )
    zhang, li, wang = [await create_owner(client) for _ in range(3)]
    for territory, owner in ((east, zhang), (east, li), (south, wang)):
        await client.put(f"/v1/territories/{territory['id']}/members/{owner['id']}", json={})
    ruleset = (
        await client.post(
            "/v1/rulesets", json={"name": "2027", "default_territory_id": country["id"]}
        )
    ).json()
    await add_rule(
        client,
        ruleset,
        name="华东",
        priority=10,
        condition=where("province", "in", ["上海", "江苏"]),
        territory_id=east["id"],
    )
    await add_rule(
        client,
        ruleset,
        name="华南",
        priority=10,
        condition=where("province", "eq", "广东"),
        territory_id=south["id"],
    )
    return {
        "country": country,
        "east": east,
        "south": south,
        "owners": {zhang["id"], li["id"]},
        "wang": wang,
        "ruleset": ruleset,
    }


@pytest.fixture
async def pool(client: httpx.AsyncClient, regions: dict[str, Any]) -> dict[str, Any]:
    """Rules active; reps who are members of 全国, whose pool takes the unmatched customers."""
    await activate(client, regions["ruleset"])
    reps = [await create_owner(client) for _ in range(3)]
    for rep in reps:
        await client.put(f"/v1/territories/{regions['country']['id']}/members/{rep['id']}", json={})
    return regions | {"reps": [r["id"] for r in reps]}
