"""Customers: the unified pool's CRUD, filters, pagination, validation and preconditions."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from tests.api.helpers import (
    assert_problem,
    create_customer,
    customer_body,
    list_all,
)


async def test_created_customer_is_returned_with_version_etag_and_location(
    client: httpx.AsyncClient,
) -> None:
    body = customer_body(
        tags=["strategic", "listed", "strategic"],
        attributes={"channel": "direct", "plants": 3, "export": True},
        employees=1200,
        annual_revenue=3.5e8,
        potential_score=80,
        registration_id="91310000mA1FL0XX1k",
        last_activity_at="2026-11-01T10:00:00+08:00",
    )
    response = await client.post("/v1/customers", json=body)

    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"/v1/customers/{created['id']}"
    assert response.headers["etag"] == '"1"'
    assert created["version"] == 1
    assert created["tags"] == ["listed", "strategic"]
    assert created["registration_id"] == "91310000MA1FL0XX1K"
    assert created["ownership"] is None
    assert dt.datetime.fromisoformat(created["last_activity_at"]) == dt.datetime(
        2026, 11, 1, 2, 0, tzinfo=dt.UTC
    )
    fetched = (await client.get(f"/v1/customers/{created['id']}")).json()
    assert fetched == created


async def test_text_is_trimmed_and_blank_optional_text_means_unknown(
    client: httpx.AsyncClient,
) -> None:
    created = await create_customer(client, name="  江苏恒瑞制造有限公司 ", city="  ", district="")
    assert created["name"] == "江苏恒瑞制造有限公司"
    assert created["city"] is None
    assert created["district"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("potential_score", 101),
        ("potential_score", -1),
        ("employees", -5),
        ("annual_revenue", -0.01),
        ("name", ""),
        ("name", "x" * 201),
        ("province", "x" * 65),
        ("tags", ["ok", ""]),
        ("attributes", {"bad key": 1}),
        ("attributes", {"nested": {"a": 1}}),
        ("last_activity_at", "2026-11-01T10:00:00"),
        ("owner_id", "00000000-0000-0000-0000-000000000000"),
        ("version", 7),
    ],
)
async def test_invalid_customer_is_rejected_with_a_pointer_to_the_field(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    response = await client.post("/v1/customers", json=customer_body(**{field: value}))

    problem = assert_problem(response, 422, "validation-error")
    pointers = [error["pointer"] for error in problem["errors"]]
    assert any(pointer.startswith(f"#/{field}") for pointer in pointers), pointers
    assert (await client.get("/v1/customers")).json()["items"] == []


async def test_malformed_json_is_a_validation_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/customers", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation-error")


async def test_same_source_and_external_id_conflicts_naming_the_existing_customer(
    client: httpx.AsyncClient,
) -> None:
    first = await create_customer(client, external_id="X1")
    response = await client.post("/v1/customers", json=customer_body(external_id="X1"))

    problem = assert_problem(response, 409, "already-exists")
    assert problem["existing_id"] == first["id"]
    assert problem["field"] == "external_id"
    other_source = await client.post(
        "/v1/customers", json=customer_body(source="erp", external_id="X1")
    )
    assert other_source.status_code == 201


async def test_registration_id_is_unique_across_sources(client: httpx.AsyncClient) -> None:
    first = await create_customer(client, registration_id="91440300MA5F00000A")
    response = await client.post(
        "/v1/customers", json=customer_body(source="erp", registration_id="91440300ma5f00000a")
    )
    problem = assert_problem(response, 409, "already-exists")
    assert problem["existing_id"] == first["id"]
    assert problem["field"] == "registration_id"


async def test_unknown_parent_is_an_invalid_reference(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/customers", json=customer_body(parent_id="01930000-0000-7000-8000-000000000000")
    )
    problem = assert_problem(response, 422, "invalid-reference")
    assert problem["errors"][0]["pointer"] == "#/parent_id"


async def test_patch_changes_only_the_fields_sent_and_bumps_the_version(
    client: httpx.AsyncClient,
) -> None:
    created = await create_customer(client, industry="retail", tier="C")
    response = await client.patch(
        f"/v1/customers/{created['id']}", json={"tier": "A", "city": None}
    )

    assert response.status_code == 200
    patched = response.json()
    assert (patched["tier"], patched["city"], patched["industry"]) == ("A", None, "retail")
    assert patched["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert patched["updated_at"] > created["updated_at"]


async def test_patch_that_changes_nothing_keeps_the_version(client: httpx.AsyncClient) -> None:
    created = await create_customer(client, tier="C")
    response = await client.patch(f"/v1/customers/{created['id']}", json={"tier": "C"})
    assert response.json()["version"] == 1


async def test_patch_with_stale_if_match_fails_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    created = await create_customer(client, tier="C")
    path = f"/v1/customers/{created['id']}"
    assert (await client.patch(path, json={"tier": "B"}, headers={"If-Match": '"1"'})).is_success

    stale = await client.patch(path, json={"tier": "A"}, headers={"If-Match": '"1"'})

    problem = assert_problem(stale, 412, "stale-version")
    assert problem["current_version"] == 2
    assert (await client.get(path)).json()["tier"] == "B"


async def test_malformed_if_match_is_a_bad_request(client: httpx.AsyncClient) -> None:
    created = await create_customer(client)
    response = await client.patch(
        f"/v1/customers/{created['id']}", json={"tier": "A"}, headers={"If-Match": "v1"}
    )
    assert_problem(response, 400, "invalid-precondition")


async def test_patch_cannot_clear_the_name_or_change_the_identity(
    client: httpx.AsyncClient,
) -> None:
    created = await create_customer(client)
    path = f"/v1/customers/{created['id']}"
    assert_problem(await client.patch(path, json={"name": None}), 422, "validation-error")
    assert_problem(await client.patch(path, json={"external_id": "X"}), 422, "validation-error")


async def test_group_cycles_are_refused(client: httpx.AsyncClient) -> None:
    group = await create_customer(client)
    subsidiary = await create_customer(client, parent_id=group["id"])
    response = await client.patch(
        f"/v1/customers/{group['id']}", json={"parent_id": subsidiary["id"]}
    )
    assert_problem(response, 409, "hierarchy-cycle")
    itself = await client.patch(f"/v1/customers/{group['id']}", json={"parent_id": group["id"]})
    assert_problem(itself, 409, "hierarchy-cycle")


async def test_delete_removes_the_customer_but_not_a_group_with_subsidiaries(
    client: httpx.AsyncClient,
) -> None:
    group = await create_customer(client)
    subsidiary = await create_customer(client, parent_id=group["id"])

    assert_problem(await client.delete(f"/v1/customers/{group['id']}"), 409, "still-referenced")
    assert (await client.delete(f"/v1/customers/{subsidiary['id']}")).status_code == 204
    assert (await client.delete(f"/v1/customers/{group['id']}")).status_code == 204
    assert_problem(await client.get(f"/v1/customers/{group['id']}"), 404, "not-found")


async def test_list_pages_through_every_customer_once_in_creation_order(
    client: httpx.AsyncClient,
) -> None:
    created = [await create_customer(client) for _ in range(7)]
    listed = await list_all(client, "/v1/customers", limit=3)
    assert [c["id"] for c in listed] == sorted(c["id"] for c in created)


async def test_list_filters_combine(client: httpx.AsyncClient) -> None:
    wanted = await create_customer(
        client, province="江苏", city="苏州", industry="energy", tier="A", tags=["strategic"]
    )
    await create_customer(client, province="江苏", city="苏州", industry="energy", tier="B")
    await create_customer(client, province="浙江", tier="A", tags=["strategic"])

    listed = await list_all(
        client, "/v1/customers", province="江苏", city="苏州", tier="A", tag="strategic"
    )
    assert [c["id"] for c in listed] == [wanted["id"]]
    assert len(await list_all(client, "/v1/customers", tag="strategic")) == 2
    by_key = await list_all(
        client, "/v1/customers", source="crm", external_id=wanted["external_id"]
    )
    assert [c["id"] for c in by_key] == [wanted["id"]]


async def test_updated_since_returns_customers_changed_at_or_after(
    client: httpx.AsyncClient,
) -> None:
    old = await create_customer(client)
    cutoff = (await create_customer(client))["created_at"]
    await client.patch(f"/v1/customers/{old['id']}", json={"tier": "A"})

    listed = await list_all(client, "/v1/customers", updated_since=cutoff)
    assert len(listed) == 2
    naive = await client.get("/v1/customers", params={"updated_since": "2026-01-01T00:00:00"})
    assert_problem(naive, 422, "validation-error")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"cursor": "!!"}])
async def test_bad_paging_parameters_are_rejected(
    client: httpx.AsyncClient, params: dict[str, str | int]
) -> None:
    response = await client.get("/v1/customers", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_customer_is_a_not_found_problem(client: httpx.AsyncClient) -> None:
    missing = "01930000-0000-7000-8000-000000000000"
    problem = assert_problem(await client.get(f"/v1/customers/{missing}"), 404, "not-found")
    assert problem["id"] == missing
    assert_problem(await client.patch(f"/v1/customers/{missing}", json={}), 404, "not-found")
    assert_problem(await client.delete(f"/v1/customers/{missing}"), 404, "not-found")
