"""Duplicates (撞单): customers that look like one company are found on every write, and a
conflict is logged once per pair when their owners differ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.security.scopes import Scope
from tests.api.helpers import (
    activate,
    assert_problem,
    create_customer,
    customer_body,
    list_all,
)
from tests.conftest import KeyMaker, http_client
from tests.openapi_conformance import DeclaredResponses


async def duplicate_conflicts(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    return await list_all(client, "/v1/conflicts", kind="duplicate_customer", **params)


def pair(*customers: dict[str, Any]) -> list[str]:
    return sorted(customer["id"] for customer in customers)


async def owner_of(client: httpx.AsyncClient, customer: dict[str, Any]) -> str | None:
    fetched = (await client.get(f"/v1/customers/{customer['id']}")).json()
    owner: str | None = fetched["ownership"]["owner_id"]
    return owner


async def test_chinese_spellings_of_one_company_with_different_owners_raise_one_conflict(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    east = await create_customer(client, name="上海华东机械有限公司", province="上海")
    south = await create_customer(client, name="上海华东机械（集团）股份有限公司", province="广东")

    (conflict,) = await duplicate_conflicts(client)

    assert conflict["status"] == "open"
    assert conflict["customer_ids"] == pair(east, south)
    assert sorted(conflict["owner_ids"]) == sorted(
        [await owner_of(client, east), regions["wang"]["id"]]
    )
    assert conflict["details"]["reasons"] == ["normalized_name"]
    assert conflict["details"]["normalized_name"] == "上海华东机械"
    # The smallest territory holding both: a national manager's key sees it.
    assert conflict["territory_id"] == regions["country"]["id"]
    assert conflict["cause"] == "duplicate_customer:customers:{}:{}".format(*pair(east, south))


async def test_english_spellings_fold_alike(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    first = await create_customer(client, name="Acme Co., Ltd.", province="上海")
    second = await create_customer(client, name="ＡＣＭＥ,  Inc.", province="广东")
    await create_customer(client, name="Acme Tech Ltd", province="广东")

    (conflict,) = await duplicate_conflicts(client)

    assert conflict["customer_ids"] == pair(first, second)
    assert conflict["details"]["normalized_name"] == "acme"


async def test_duplicates_with_the_same_owner_are_no_conflict(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    first = await create_customer(client, name="深圳南方电子有限公司", province="广东")
    second = await create_customer(client, name="深圳南方电子", province="广东")
    assert await owner_of(client, first) == await owner_of(client, second) == regions["wang"]["id"]

    assert await duplicate_conflicts(client) == []
    listed = (await client.get(f"/v1/customers/{first['id']}/duplicates")).json()
    assert [(d["id"], d["same_owner"]) for d in listed["items"]] == [(second["id"], True)]


async def test_duplicates_waiting_in_pools_are_no_conflict(client: httpx.AsyncClient) -> None:
    await create_customer(client, name="北京北方重工有限公司")
    await create_customer(client, name="北京北方重工集团")

    assert await duplicate_conflicts(client) == []


async def test_registration_ids_written_differently_are_one_company(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    first = await create_customer(
        client, name="华东精密", province="上海", registration_id="91310000MA1FL0XX1K"
    )
    second = await create_customer(
        client, name="精密仪器厂", province="广东", registration_id="91310000-ma1fl0xx1k"
    )

    (conflict,) = await duplicate_conflicts(client)

    assert conflict["customer_ids"] == pair(first, second)
    assert conflict["details"]["reasons"] == ["registration_id"]
    assert conflict["details"]["registration_key"] == "91310000MA1FL0XX1K"
    listed = (await client.get(f"/v1/customers/{second['id']}/duplicates")).json()
    (duplicate,) = listed["items"]
    assert (duplicate["id"], duplicate["reasons"]) == (first["id"], ["registration_id"])
    assert duplicate["similarity"] < 0.5


async def test_a_repeated_detection_updates_the_one_open_conflict(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    await create_customer(client, name="杭州新材料有限公司", province="上海")
    south = await create_customer(client, name="杭州新材料", province="广东")

    for name in ("杭州新材料集团", "杭州 新材料"):
        response = await client.patch(f"/v1/customers/{south['id']}", json={"name": name})
        assert response.status_code == 200, response.text
    # Facts that leave the name, the registration id and the owner alone do not look again.
    response = await client.patch(f"/v1/customers/{south['id']}", json={"tier": "A"})
    assert response.status_code == 200, response.text

    (conflict,) = await duplicate_conflicts(client)
    assert conflict["occurrences"] == 3
    assert conflict["version"] == 3


async def test_a_move_to_another_owner_is_looked_at_again(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    first = await create_customer(client, name="青岛海蓝食品有限公司", province="广东")
    second = await create_customer(client, name="青岛海蓝食品股份有限公司", province="广东")
    assert await duplicate_conflicts(client) == []

    response = await client.patch(f"/v1/customers/{second['id']}", json={"province": "上海"})
    assert response.status_code == 200, response.text

    (conflict,) = await duplicate_conflicts(client)
    assert conflict["customer_ids"] == pair(first, second)


async def test_renaming_a_customer_into_a_duplicate_is_detected(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    east = await create_customer(client, name="苏州光电科技有限公司", province="上海")
    south = await create_customer(client, name="广州光电", province="广东")
    assert await duplicate_conflicts(client) == []

    response = await client.patch(
        f"/v1/customers/{south['id']}", json={"name": "苏州 光电科技 股份有限公司"}
    )
    assert response.status_code == 200, response.text

    (conflict,) = await duplicate_conflicts(client)
    assert conflict["customer_ids"] == pair(east, south)


async def test_a_third_duplicate_pairs_only_with_the_one_owned_differently(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    east = await create_customer(client, name="天津汽车有限公司", province="上海")
    south = await create_customer(client, name="天津汽车", province="广东")
    third = await create_customer(client, name="天津汽车集团", province="广东")

    conflicts = await duplicate_conflicts(client)

    assert sorted(c["customer_ids"] for c in conflicts) == sorted(
        [pair(east, south), pair(east, third)]
    )
    about_third = await duplicate_conflicts(client, customer_id=third["id"])
    assert [c["customer_ids"] for c in about_third] == [pair(east, third)]


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements the engine runs inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_batch_upsert_detects_duplicates_with_one_query_per_batch(
    client: httpx.AsyncClient, regions: dict[str, Any], engine: AsyncEngine
) -> None:
    await activate(client, regions["ruleset"])
    existing = await create_customer(client, name="重庆能源有限公司", province="上海")
    items = [customer_body(external_id=f"D{i:04d}", province="广东") for i in range(300)]
    items[10]["name"] = "重庆能源集团有限公司"  # a duplicate of a stored customer
    items[20]["name"] = items[21]["name"] = "成都食品"  # duplicates of each other, same owner
    items[30]["name"], items[31]["name"] = "武汉药业有限公司", "武汉药业"
    items[31]["province"] = "上海"  # another owner

    with statements(engine) as run:
        response = await client.post("/v1/customers/batch", json={"items": items})

    assert response.status_code == 200, response.text
    ids = [item["id"] for item in response.json()["items"]]
    conflicts = await duplicate_conflicts(client)
    assert sorted(c["customer_ids"] for c in conflicts) == sorted(
        [pair(existing, {"id": ids[10]}), sorted([ids[30], ids[31]])]
    )
    lookups = [sql for sql in run if "row_number()" in sql.lower()]
    assert len(lookups) == 1, lookups


async def test_batch_updates_that_make_a_duplicate_are_detected(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    east = await create_customer(client, name="西安电子有限公司", province="上海")
    renamed = await create_customer(client, external_id="S1", name="西安南方", province="广东")
    sibling = await create_customer(client, name="西安秦创新材料", province="广东")
    moved = await create_customer(client, external_id="S2", name="西安秦创·新材料", province="广东")
    assert await duplicate_conflicts(client) == []

    response = await client.post(
        "/v1/customers/batch",
        json={
            "items": [
                {"source": "crm", "external_id": "S1", "name": "西安电子股份有限公司"},
                {"source": "crm", "external_id": "S2", "name": moved["name"], "province": "上海"},
            ]
        },
    )

    assert [item["status"] for item in response.json()["items"]] == ["updated", "updated"]
    conflicts = await duplicate_conflicts(client)
    assert sorted(c["customer_ids"] for c in conflicts) == sorted(
        [pair(east, renamed), pair(sibling, moved)]
    )


async def test_get_duplicates_says_why_and_who_owns_each(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    customer = await create_customer(
        client, name="华东机械有限公司", province="上海", registration_id="913100001234567890"
    )
    same_name = await create_customer(client, name="华东机械（集团）", province="广东")
    same_both = await create_customer(
        client, name="华东 机械", province="广东", registration_id="91310000-1234567890"
    )
    similar = await create_customer(client, name="上海华东机械有限公司", province="广东")
    await create_customer(client, name="华南纺织有限公司", province="广东")

    response = await client.get(f"/v1/customers/{customer['id']}/duplicates")

    assert response.status_code == 200, response.text
    listed = response.json()
    assert (listed["customer_id"], listed["normalized_name"]) == (customer["id"], "华东机械")
    assert [(d["id"], d["reasons"], d["similarity"]) for d in listed["items"]] == [
        (same_name["id"], ["normalized_name"], 1.0),
        (same_both["id"], ["registration_id", "normalized_name"], 1.0),
    ]
    first = listed["items"][0]
    assert first["ownership"]["territory_id"] == regions["south"]["id"]
    assert first["ownership"]["owner_id"] == regions["wang"]["id"]
    assert first["same_owner"] is False
    assert (first["source"], first["external_id"], first["name"]) == (
        "crm",
        same_name["external_id"],
        "华东机械（集团）",
    )

    with_similar = (
        await client.get(
            f"/v1/customers/{customer['id']}/duplicates", params={"min_similarity": 0.8}
        )
    ).json()["items"]
    assert [(d["id"], d["reasons"]) for d in with_similar] == [
        (same_name["id"], ["normalized_name"]),
        (same_both["id"], ["registration_id", "normalized_name"]),
        (similar["id"], ["similar_name"]),
    ]
    assert with_similar[2]["similarity"] == 0.8
    stricter = await client.get(
        f"/v1/customers/{customer['id']}/duplicates", params={"min_similarity": 0.81, "limit": 1}
    )
    assert [d["id"] for d in stricter.json()["items"]] == [same_name["id"]]


async def test_similar_names_are_ranked_most_alike_first(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client, name="南京科技发展有限公司")
    near = await create_customer(client, name="南京科技发展实业有限公司")
    far = await create_customer(client, name="南京科技有限公司")
    await create_customer(client, name="杭州贸易有限公司")

    listed = (
        await client.get(
            f"/v1/customers/{customer['id']}/duplicates", params={"min_similarity": 0.5}
        )
    ).json()["items"]

    assert [d["id"] for d in listed] == [near["id"], far["id"]]
    assert listed[0]["similarity"] > listed[1]["similarity"] >= 0.5
    assert {d["reasons"][0] for d in listed} == {"similar_name"}


async def test_duplicate_parameters_are_checked(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    path = f"/v1/customers/{customer['id']}/duplicates"
    for params in ({"min_similarity": 1.5}, {"min_similarity": -0.1}, {"limit": 0}):
        assert_problem(await client.get(path, params=params), 422, "validation-error")
    missing = f"/v1/customers/{uuid.uuid4()}/duplicates"
    assert_problem(await client.get(missing), 404, "not-found")


async def test_a_confined_key_sees_only_duplicates_in_its_territories(
    client: httpx.AsyncClient,
    regions: dict[str, Any],
    app: FastAPI,
    make_key: KeyMaker,
    declared_responses: DeclaredResponses,
) -> None:
    await activate(client, regions["ruleset"])
    east = await create_customer(client, name="江苏恒瑞制造有限公司", province="上海")
    east_too = await create_customer(client, name="江苏恒瑞制造", province="江苏")
    south = await create_customer(client, name="江苏恒瑞制造集团", province="广东")
    key = await make_key(Scope.CUSTOMERS_READ, territory_ids=[uuid.UUID(regions["east"]["id"])])

    async with http_client(app, declared_responses, key) as confined:
        listed = await confined.get(
            f"/v1/customers/{east['id']}/duplicates", params={"min_similarity": 0.1}
        )
        hidden = await confined.get(f"/v1/customers/{south['id']}/duplicates")

    assert [d["id"] for d in listed.json()["items"]] == [east_too["id"]]
    assert_problem(hidden, 404, "not-found")
    everything = (await client.get(f"/v1/customers/{east['id']}/duplicates")).json()
    assert [d["id"] for d in everything["items"]] == [east_too["id"], south["id"]]


async def test_deleting_one_of_a_pair_resolves_their_conflict(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    await create_customer(client, name="长沙工程机械有限公司", province="上海")
    south = await create_customer(client, name="长沙工程机械", province="广东")
    (conflict,) = await duplicate_conflicts(client)

    assert (await client.delete(f"/v1/customers/{south['id']}")).status_code == 204

    closed = (await client.get(f"/v1/conflicts/{conflict['id']}")).json()
    assert (closed["status"], closed["resolution_note"]) == (
        "resolved",
        f"customer {south['id']} deleted",
    )
