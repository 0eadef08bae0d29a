"""The demo data loads through the real schema, once."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from territory_service.demo.admin_key import ensure_demo_admin_key
from territory_service.demo.loader import flag_demo_duplicates, load_demo_data
from territory_service.demo.ruleset import UNCOVERED_PROVINCE
from territory_service.rulesets.activation import re_divide_now
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


async def test_demo_admin_key_is_written_once_and_replaced_when_revoked(
    app: FastAPI, anonymous_client: httpx.AsyncClient, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "demo-admin-key.txt"
    async with app.state.session_factory() as session:
        first, new = await ensure_demo_admin_key(session, path)
    assert new is True
    assert path.read_text().strip() == first
    assert path.stat().st_mode & 0o777 == 0o600
    async with app.state.session_factory() as session:
        assert await ensure_demo_admin_key(session, path) == (first, False)
    listed = await anonymous_client.get(
        "/v1/api-keys", headers={"Authorization": f"Bearer {first}"}
    )
    demo_key = next(k for k in listed.json()["items"] if k["name"] == "demo admin")
    await client.delete(f"/v1/api-keys/{demo_key['id']}")

    async with app.state.session_factory() as session:
        second, new = await ensure_demo_admin_key(session, path)

    assert (new, second != first) == (True, True)
    assert path.read_text().strip() == second


async def test_the_demo_rule_set_gives_every_customer_an_owner_and_shows_its_conflicts(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async with app.state.session_factory() as session:
        await load_demo_data(session)
    job = await re_divide_now(app.state.session_factory, app.state.settings, reason="demo")
    result = job.result
    async with app.state.session_factory() as session:
        assert await flag_demo_duplicates(session) >= 2

    assert result["customers"] == result["changed"] >= 1800
    tibet = await list_all(client, "/v1/customers", province=UNCOVERED_PROVINCE, limit=1000)
    # No regional rule covers it: those no other rule catches wait in the default pool.
    gap = [c for c in tibet if c["ownership"]["owner_id"] is None]
    assert gap
    kinds = {c["kind"] for c in await list_all(client, "/v1/conflicts")}
    assert {"no_match", "rule_tie", "duplicate_customer"} <= kinds
    explained = (await client.get(f"/v1/customers/{gap[0]['id']}/explain")).json()
    assert [step["step"] for step in explained["decision"]["trace"]] == ["no_match"]


async def test_the_demo_pool_rules_are_inherited_by_every_territory(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async with app.state.session_factory() as session:
        await load_demo_data(session)
    territories = {t["code"]: t for t in await list_all(client, "/v1/territories")}

    shanghai = await client.get(f"/v1/territories/{territories['CN-SH']['id']}/pool-rules")
    sichuan = await client.get(f"/v1/territories/{territories['CN-SC']['id']}/pool-rules")

    east = shanghai.json()["effective"]
    assert (east["holding_limit"], east["reclaim_after_days"], east["exempt_tags"]) == (
        30,
        30,
        ["open_deal"],
    )
    assert sichuan.json()["effective"]["holding_limit"] == 50
    assert shanghai.json()["version"] == 0  # nothing of its own: all inherited
