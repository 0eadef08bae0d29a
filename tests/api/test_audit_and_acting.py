"""Acting users (X-Act-As), the audit trail, and the request size limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.ownership.models import OwnershipEvent
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


@pytest.fixture
async def integration(
    app: FastAPI, declared_responses: DeclaredResponses, make_key: KeyMaker
) -> AsyncIterator[httpx.AsyncClient]:
    """A CRM integration's key: writes customers on behalf of its users."""
    key = await make_key(Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE, Scope.ACT_AS)
    async with http_client(app, declared_responses, key) as client:
        yield client


async def audit(client: httpx.AsyncClient, **filters: Any) -> list[dict[str, Any]]:
    return await list_all(client, "/v1/audit", **filters)


async def test_acting_owner_is_recorded_in_the_audit_trail_and_the_ownership_events(
    client: httpx.AsyncClient,
    integration: httpx.AsyncClient,
    engine: AsyncEngine,
) -> None:
    rep = await create_owner(client, external_id="crm-user-7")
    territory = await create_territory(client)
    customer = await create_customer(client)
    await place_customer(engine, customer, territory, rep)

    deleted = await integration.delete(
        f"/v1/customers/{customer['id']}", headers={"X-Act-As": "crm-user-7"}
    )

    assert deleted.status_code == 204
    entries = await audit(client, acting_owner_id=rep["id"])
    assert [(e["method"], e["status"]) for e in entries] == [("DELETE", 204)]
    assert entries[0]["resource_ids"] == [customer["id"]]
    assert entries[0]["request_id"] == deleted.headers["x-request-id"]
    async with engine.connect() as connection:
        event = (
            await connection.execute(
                select(OwnershipEvent).where(
                    OwnershipEvent.customer_id == uuid.UUID(customer["id"])
                )
            )
        ).one()
    assert (event.acting_owner_id, event.territory_id) == (uuid.UUID(rep["id"]), None)
    assert event.actor_key_id == uuid.UUID(entries[0]["key_id"])


async def test_acting_needs_the_act_as_scope_and_an_active_owner(
    client: httpx.AsyncClient,
    integration: httpx.AsyncClient,
    app: FastAPI,
    declared_responses: DeclaredResponses,
    make_key: KeyMaker,
) -> None:
    await create_owner(client, external_id="gone", active=False)
    plain_key = await make_key(Scope.CUSTOMERS_READ)
    async with http_client(app, declared_responses, plain_key) as plain:
        refused = await plain.get("/v1/customers", headers={"X-Act-As": "gone"})
    assert "act_as" in assert_problem(refused, 403, "forbidden")["detail"]
    for external_id in ("gone", "nobody"):
        response = await integration.get("/v1/customers", headers={"X-Act-As": external_id})
        assert_problem(response, 403, "forbidden")


async def test_writes_and_refusals_are_audited_and_reads_are_not(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, integration: httpx.AsyncClient
) -> None:
    created = await integration.post("/v1/customers", json=customer_body())
    await integration.get("/v1/customers")
    await integration.get("/v1/owners")  # lacks owners:read: 403
    await anonymous_client.post("/v1/customers", json=customer_body())  # no key: 401

    entries = await audit(client)

    summary = [(e["method"], e["path"], e["status"]) for e in entries]
    assert summary == [
        ("POST", "/v1/customers", 201),
        ("GET", "/v1/owners", 403),
        ("POST", "/v1/customers", 401),
    ]
    assert entries[0]["resource_ids"] == [created.json()["id"]]
    assert entries[1]["key_id"] == entries[0]["key_id"] is not None
    assert entries[2]["key_id"] is None
    only_refusals = await audit(client, status=401)
    assert len(only_refusals) == 1


async def test_a_revoked_keys_refusal_is_audited_with_the_key(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient
) -> None:
    issued = (
        await client.post("/v1/api-keys", json={"name": "old", "scopes": ["customers:read"]})
    ).json()
    await client.delete(f"/v1/api-keys/{issued['id']}")
    await anonymous_client.get(
        "/v1/customers", headers={"Authorization": f"Bearer {issued['secret']}"}
    )

    entries = await audit(client, key_id=issued["id"])
    assert [(e["method"], e["status"]) for e in entries] == [("GET", 401)]


async def test_audit_filters_page_through_the_trail(client: httpx.AsyncClient) -> None:
    customer = await create_customer(client)
    for tier in ("A", "B", "C"):
        await client.patch(f"/v1/customers/{customer['id']}", json={"tier": tier})

    touching = await audit(client, resource_id=customer["id"], limit=1)
    patches = await audit(client, method="PATCH")
    assert len(touching) == 4
    assert [e["id"] for e in patches] == [e["id"] for e in touching[1:]]
    assert_problem(
        await client.get("/v1/audit", params={"method": "patch"}), 422, "validation-error"
    )


async def test_the_audit_trail_is_for_admins(integration: httpx.AsyncClient) -> None:
    assert_problem(await integration.get("/v1/audit"), 403, "forbidden")


async def test_bodies_over_the_limit_are_refused_with_413_before_anything_happens(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    limit = app.state.settings.max_body_bytes
    big = {"items": [customer_body(name="x" * 200) for _ in range(limit // 200 + 1)]}

    response = await client.post("/v1/customers/batch", json=big)

    assert assert_problem(response, 413, "payload-too-large")["max_bytes"] == limit
    assert await list_all(client, "/v1/customers") == []


async def test_a_streamed_body_over_the_limit_is_refused_with_413(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    limit = app.state.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"items": ['
        for _ in range(limit // 1000 + 1):
            yield b" " * 1000
        yield b"]}"

    response = await client.post(
        "/v1/customers/batch", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")
