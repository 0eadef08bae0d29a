"""Rule sets: drafts edited, activated as a job, customers resolved live and explained."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from territory_service.jobs.models import Job, JobKind, JobStatus
from tests.api.helpers import (
    CATCH_ALL,
    activate,
    add_rule,
    assert_problem,
    create_customer,
    list_all,
    where,
)


async def test_activation_resolves_every_customer_and_a_rerun_changes_nothing(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    shanghai = await create_customer(client, province="上海")
    guangdong = await create_customer(client, province="广东")
    nowhere = await create_customer(client, province="西藏")

    job = await activate(client, regions["ruleset"])

    assert job["result"] == {"kind": "activation", "customers": 3, "changed": 3}
    owned = {c["id"]: c["ownership"] for c in await list_all(client, "/v1/customers")}
    assert owned[shanghai["id"]]["territory_id"] == regions["east"]["id"]
    assert owned[shanghai["id"]]["owner_id"] in regions["owners"]
    assert owned[guangdong["id"]]["owner_id"] == regions["wang"]["id"]
    assert (owned[nowhere["id"]]["territory_id"], owned[nowhere["id"]]["owner_id"]) == (
        regions["country"]["id"],
        None,
    )
    history = (await client.get(f"/v1/customers/{shanghai['id']}/history")).json()["items"]
    assert [(e["version"], e["source"], e["from_territory_id"]) for e in history] == [
        (1, "rule", None)
    ]
    no_match = await list_all(client, "/v1/conflicts", kind="no_match")
    assert len(no_match) == 1

    again = await activate(client, regions["ruleset"])

    assert again["result"] == {"kind": "activation", "customers": 3, "changed": 0}
    assert len((await client.get(f"/v1/customers/{shanghai['id']}/history")).json()["items"]) == 1


async def test_an_active_rule_set_resolves_new_and_changed_customers_at_once(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    customer = await create_customer(client, province="上海")
    assert customer["ownership"]["territory_id"] == regions["east"]["id"]

    moved = await client.patch(f"/v1/customers/{customer['id']}", json={"province": "广东"})

    assert moved.json()["ownership"]["owner_id"] == regions["wang"]["id"]
    history = (await client.get(f"/v1/customers/{customer['id']}/history")).json()["items"]
    assert [e["version"] for e in history] == [1, 2]
    assert history[1]["from_territory_id"] == regions["east"]["id"]


async def test_explain_shows_the_matching_rules_and_the_steps(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    customer = await create_customer(client, province="江苏")

    explained = (await client.get(f"/v1/customers/{customer['id']}/explain")).json()

    decision = explained["decision"]
    assert [m["name"] for m in decision["matches"]] == ["华东"]
    assert [s["step"] for s in decision["trace"]] == ["rules", "stability"]
    assert explained["current"]["owner_id"] == decision["owner_id"]


async def test_stateless_resolve_answers_without_storing_anything(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    response = await client.post("/v1/resolve", json={"province": "广东", "employees": 30})
    assert response.json()["owner_id"] == regions["wang"]["id"]
    assert await list_all(client, "/v1/customers") == []


async def test_resolve_and_explain_need_an_active_rule_set(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/v1/resolve", json={}), 409, "no-active-ruleset")


async def test_only_drafts_are_edited(client: httpx.AsyncClient, regions: dict[str, Any]) -> None:
    await activate(client, regions["ruleset"])
    response = await client.post(
        f"/v1/rulesets/{regions['ruleset']['id']}/rules",
        json={
            "name": "x",
            "priority": 1,
            "condition": CATCH_ALL,
            "territory_id": regions["east"]["id"],
        },
    )
    assert_problem(response, 409, "ruleset-not-draft")


@pytest.mark.parametrize(
    ("condition", "pointer"),
    [
        (where("colour", "eq", "red"), "#/condition/any_of/0/all_of/0/field"),
        (where("province", "gt", 3), "#/condition/any_of/0/all_of/0/op"),
        (where("employees", "eq", "many"), "#/condition/any_of/0/all_of/0/value"),
        (where("employees", "between", [10, 5]), "#/condition/any_of/0/all_of/0/value"),
        ({"any_of": []}, "#/condition/any_of"),
    ],
)
async def test_invalid_conditions_point_at_the_predicate(
    client: httpx.AsyncClient, regions: dict[str, Any], condition: dict[str, Any], pointer: str
) -> None:
    response = await client.post(
        f"/v1/rulesets/{regions['ruleset']['id']}/rules",
        json={
            "name": "x",
            "priority": 1,
            "condition": condition,
            "territory_id": regions["east"]["id"],
        },
    )
    problem = assert_problem(response, 422, "invalid-condition")
    assert problem["errors"][0]["pointer"] == pointer


async def test_a_second_activation_while_one_runs_is_refused(
    client: httpx.AsyncClient, regions: dict[str, Any], app: FastAPI
) -> None:
    async with app.state.session_factory() as session, session.begin():
        session.add(Job(kind=JobKind.ACTIVATION, status=JobStatus.QUEUED))
    response = await client.post(f"/v1/rulesets/{regions['ruleset']['id']}/activate")
    assert_problem(response, 409, "activation-running")


async def test_validate_reports_overlaps_with_an_example_and_reject_blocks_activation(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    ruleset = (
        await client.post(
            "/v1/rulesets",
            json={
                "name": "strict",
                "default_territory_id": regions["country"]["id"],
                "tie_policy": "reject",
            },
        )
    ).json()
    await add_rule(
        client,
        ruleset,
        name="上海",
        priority=1,
        condition=where("province", "eq", "上海"),
        territory_id=regions["east"]["id"],
    )
    await add_rule(
        client,
        ruleset,
        name="大客户",
        priority=1,
        condition=where("employees", "gte", 1000),
        territory_id=regions["south"]["id"],
    )
    await add_rule(
        client,
        ruleset,
        name="never",
        priority=2,
        condition={
            "any_of": [
                {
                    "all_of": [
                        {"field": "tier", "op": "eq", "value": "A"},
                        {"field": "tier", "op": "eq", "value": "B"},
                    ]
                }
            ]
        },
        territory_id=regions["east"]["id"],
    )

    report = (await client.post(f"/v1/rulesets/{ruleset['id']}/validate")).json()

    assert report["valid"] is False
    by_code = {issue["code"]: issue for issue in report["issues"]}
    assert set(by_code) == {"overlap", "never_matches"}
    assert by_code["overlap"]["severity"] == "error"
    assert by_code["overlap"]["example"]["province"] == "上海"
    assert by_code["overlap"]["example"]["employees"] >= 1000
    refused = await client.post(f"/v1/rulesets/{ruleset['id']}/activate")
    assert_problem(refused, 422, "ruleset-invalid")
    assert (await client.get(f"/v1/rulesets/{ruleset['id']}")).json()["state"] == "draft"
