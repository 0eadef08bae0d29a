"""Batch upsert: every item gets its own result and one bad item never sinks the others."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import assert_problem, create_customer, customer_body, list_all


async def test_batch_of_1000_with_3_invalid_stores_997_and_reports_the_3(
    client: httpx.AsyncClient,
) -> None:
    items = [customer_body(external_id=f"B{i:05d}") for i in range(1000)]
    items[10]["potential_score"] = 150
    items[500]["name"] = ""
    items[999] = {"source": "crm", "external_id": "B00999", "name": "x", "owner": "u1"}

    response = await client.post("/v1/customers/batch", json={"items": items})

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["created"], result["failed"]) == (997, 3)
    failed = {item["index"]: item for item in result["items"] if item["status"] == "error"}
    assert sorted(failed) == [10, 500, 999]
    assert failed[10]["errors"][0]["pointer"] == "#/items/10/potential_score"
    assert failed[500]["errors"][0]["pointer"] == "#/items/500/name"
    assert failed[999]["errors"][0]["pointer"] == "#/items/999/owner"
    stored = await list_all(client, "/v1/customers", limit=1000)
    assert len(stored) == 997
    assert "B00010" not in {c["external_id"] for c in stored}


async def test_batch_reports_created_updated_and_unchanged_per_item(
    client: httpx.AsyncClient,
) -> None:
    kept = await create_customer(client, external_id="K1", tier="C")
    changed = await create_customer(client, external_id="K2", tier="C", city="上海")

    response = await client.post(
        "/v1/customers/batch",
        json={
            "items": [
                {"source": "crm", "external_id": "K1", "name": kept["name"], "tier": "C"},
                {"source": "crm", "external_id": "K2", "name": changed["name"], "tier": "A"},
                customer_body(external_id="K3"),
            ]
        },
    )

    result = response.json()
    assert [item["status"] for item in result["items"]] == ["unchanged", "updated", "created"]
    assert result["items"][0] == {
        "index": 0,
        "status": "unchanged",
        "id": kept["id"],
        "version": 1,
        "detail": None,
        "errors": None,
    }
    assert result["items"][1]["version"] == 2
    after = (await client.get(f"/v1/customers/{changed['id']}")).json()
    assert (after["tier"], after["city"]) == ("A", "上海"), "fields left out keep their value"


async def test_duplicates_within_a_batch_fail_after_the_first(client: httpx.AsyncClient) -> None:
    first = customer_body(external_id="D1", registration_id="91110000600037341L")
    again = customer_body(external_id="D1")
    same_registration = customer_body(external_id="D2", registration_id="91110000600037341L")

    result = (
        await client.post("/v1/customers/batch", json={"items": [first, again, same_registration]})
    ).json()

    assert [item["status"] for item in result["items"]] == ["created", "error", "error"]
    assert "items[0]" in result["items"][1]["detail"]
    assert "items[0]" in result["items"][2]["detail"]


async def test_batch_item_taking_another_customers_registration_id_fails_alone(
    client: httpx.AsyncClient,
) -> None:
    holder = await create_customer(client, registration_id="91310115MA1K3YJ12X")
    items = [
        customer_body(external_id="R1", registration_id="91310115MA1K3YJ12X"),
        customer_body(external_id="R2", parent_id="01930000-0000-7000-8000-000000000000"),
        customer_body(external_id="R3", parent_id=holder["id"]),
    ]

    result = (await client.post("/v1/customers/batch", json={"items": items})).json()

    assert [item["status"] for item in result["items"]] == ["error", "error", "created"]
    assert [e["pointer"] for e in result["items"][0]["errors"]] == ["#/items/0/registration_id"]
    assert holder["id"] in result["items"][0]["detail"]
    assert [e["pointer"] for e in result["items"][1]["errors"]] == ["#/items/1/parent_id"]


async def test_batch_size_is_limited(client: httpx.AsyncClient) -> None:
    items = [customer_body() for _ in range(1001)]
    assert_problem(
        await client.post("/v1/customers/batch", json={"items": items}), 422, "validation-error"
    )
    assert_problem(
        await client.post("/v1/customers/batch", json={"items": []}), 422, "validation-error"
    )


def _pointers(result: dict[str, Any]) -> dict[int, list[str]]:
    """The pointers of each failed item's errors, by the item's index."""
    return {
        item["index"]: [error["pointer"] for error in item["errors"]]
        for item in result["items"]
        if item["status"] == "error"
    }


async def test_schema_errors_point_into_the_request_at_the_failing_item(
    client: httpx.AsyncClient,
) -> None:
    items: list[Any] = [customer_body() for _ in range(5)]
    items[1]["colour"] = "red"
    items[3]["size/weight~kg"] = 3
    items[4] = "not an object"

    response = await client.post("/v1/customers/batch", json={"items": items})

    assert response.status_code == 200, response.text
    assert _pointers(response.json()) == {
        1: ["#/items/1/colour"],
        3: ["#/items/3/size~1weight~0kg"],
        4: ["#/items/4"],
    }


async def test_a_missing_parent_points_at_the_items_parent_id_in_the_request(
    client: httpx.AsyncClient,
) -> None:
    items = [customer_body() for _ in range(3)]
    items[2]["parent_id"] = "01930000-0000-7000-8000-000000000000"

    result = (await client.post("/v1/customers/batch", json={"items": items})).json()

    assert [item["status"] for item in result["items"]] == ["created", "created", "error"]
    assert _pointers(result) == {2: ["#/items/2/parent_id"]}


async def test_a_repeated_key_points_at_the_field_that_makes_the_key(
    client: httpx.AsyncClient,
) -> None:
    survivor = await create_customer(client, external_id="P-S")
    merged = await create_customer(client, external_id="P-M")
    merging = await client.post(
        f"/v1/customers/{survivor['id']}/merge", json={"customer_id": merged["id"]}
    )
    assert merging.status_code == 200, merging.text
    items = [
        customer_body(external_id="P1", registration_id="91110000600037341L"),
        customer_body(external_id="P2"),
        customer_body(external_id="P1"),
        customer_body(external_id="P3", registration_id="91110000600037341L"),
        customer_body(external_id="P-S"),
        customer_body(external_id="P-M"),
    ]

    result = (await client.post("/v1/customers/batch", json={"items": items})).json()

    assert _pointers(result) == {
        2: ["#/items/2/external_id"],
        3: ["#/items/3/registration_id"],
        5: ["#/items/5/external_id"],
    }
    assert "items[0]" in result["items"][2]["errors"][0]["detail"]
    assert "items[4]" in result["items"][5]["errors"][0]["detail"]
