"""The demo data loads through the real schema, once."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from territory_service.demo.loader import load_demo_data
from tests.api.helpers import list_all


async def test_demo_data_loads_into_an_empty_database_and_only_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async with app.state.session_factory() as session:
        assert await load_demo_data(session) is True
    async with app.state.session_factory() as session:
        assert await load_demo_data(session) is False

    customers = await list_all(client, "/v1/customers", limit=1000)
    regions = await list_all(client, "/v1/territories", parent_id=await _root_id(client))
    assert 1800 <= len(customers) <= 2200
    assert {t["name"] for t in regions} == {"华北", "东北", "华东", "华中", "华南", "西南", "西北"}
    subsidiaries = [c for c in customers if c["parent_id"] is not None]
    assert subsidiaries
    shanghai = await list_all(client, "/v1/customers", province="上海", limit=1000)
    assert shanghai
    assert all(c["province"] == "上海" for c in shanghai)


async def _root_id(client: httpx.AsyncClient) -> str:
    roots = await list_all(client, "/v1/territories", roots_only=True)
    assert [t["name"] for t in roots] == ["全国"]
    return str(roots[0]["id"])
