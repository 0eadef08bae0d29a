"""Access control for every operation, generated from the app's OpenAPI document.

A new endpoint joins these tests by existing: each documented operation must either be one of
the public probes or need a key, answer 401 without one, 403 with a key that lacks its scope, and,
when it names a resource by id, 404 without changing anything for a key confined elsewhere. An
operation whose request body names ids (`…_id`, `…_ids`, found by walking its schema) must have
a case here in which a key confined to one territory names ids from outside it, and is refused
without anything changing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.config import Settings
from territory_service.conflicts.recorder import record_signals
from territory_service.db import Base
from territory_service.engine.resolution import ConflictKind, ConflictSignal
from territory_service.jobs.models import Job, JobKind, JobStatus
from territory_service.main import create_app
from territory_service.security.scopes import Scope
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_owner,
    create_territory,
    place_customer,
)
from tests.conftest import KeyMaker

PUBLIC = {("get", "/healthz"), ("get", "/readyz")}
# Tables whose rows a refused request may still add or touch: the audit trail records the
# refusal, and authentication notes when a key was last used.
BOOKKEEPING = {"audit_log", "api_keys"}

DOCUMENT = create_app(Settings(database_url="sqlite+aiosqlite://")).openapi()
OPERATIONS = [
    (method, path, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]


def operation_ids(value: Any) -> str:
    return str(value["operationId"]) if isinstance(value, dict) else str(value)


def required_scopes(operation: dict[str, Any]) -> list[Scope]:
    return [
        Scope(scope) for requirement in operation["security"] for scope in requirement["ApiKey"]
    ]


def request_body(operation: dict[str, Any], ids: dict[str, str]) -> dict[str, Any] | None:
    """A body that passes validation, so the refusal under test is the only reason to fail."""
    if "requestBody" not in operation:
        return None
    catch_all: dict[str, Any] = {"any_of": [{"all_of": []}]}
    bodies: dict[str, dict[str, Any]] = {
        "create_ruleset": {"name": "矩阵规则", "default_territory_id": ids["territory_id"]},
        "create_rule": {
            "name": "all",
            "priority": 1,
            "condition": catch_all,
            "territory_id": ids["territory_id"],
        },
        "create_customer": {"source": "crm", "external_id": "M1", "name": "矩阵测试有限公司"},
        "upsert_customers": {"items": [{"source": "crm", "external_id": "M2", "name": "批量"}]},
        "create_owner": {"external_id": "m-owner", "name": "矩阵"},
        "create_territory": {"name": "矩阵区域"},
        "create_api_key": {"name": "matrix", "scopes": ["customers:read"]},
        "resolve_conflict": {"note": "矩阵"},
        "dismiss_conflict": {"note": "矩阵"},
        "assign_ownership": {"reason": "矩阵", "territory_id": ids["territory_id"]},
        # Any id that validates: the refusal comes before the other customer is looked at.
        "merge_customer": {"customer_id": ids["owner_id"]},
        "release_customer": {"reason": "矩阵"},
        "claim_customer": {"owner_id": ids["owner_id"]},
        "claim_customers": {"customer_ids": [ids["customer_id"]], "owner_id": ids["owner_id"]},
        "hand_over": {"reason": "矩阵"},
        "create_transfer": {
            "customer_ids": [ids["customer_id"]],
            "to_owner_id": ids["colleague_id"],
            "reason": "矩阵",
        },
    }
    return bodies.get(operation["operationId"], {})


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    operation: dict[str, Any],
    ids: dict[str, str],
    key: str | None,
) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", lambda match: ids[match.group(1)], path)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if method != "get":  # writes that require If-Match get past that check: any version
        headers["If-Match"] = "*"
    body = request_body(operation, ids)
    return await client.request(method.upper(), url, json=body, headers=headers)


@pytest.fixture
async def world(client: httpx.AsyncClient, engine: AsyncEngine, app: FastAPI) -> dict[str, str]:
    """Two sibling territories; every id the routes take points into the first one."""
    country = await create_territory(client, name="全国")
    home = await create_territory(client, name="华东", parent_id=country["id"])
    elsewhere = await create_territory(client, name="华南", parent_id=country["id"])
    owner = await create_owner(client)
    await client.put(f"/v1/territories/{home['id']}/members/{owner['id']}", json={})
    colleague = await create_owner(client)
    await client.put(f"/v1/territories/{home['id']}/members/{colleague['id']}", json={})
    customer = await create_customer(client)
    await place_customer(engine, customer, home, owner)
    transfer = (
        await client.post(
            "/v1/transfers",
            json={
                "customer_ids": [customer["id"]],
                "to_owner_id": colleague["id"],
                "reason": "矩阵",
            },
        )
    ).json()
    key = (await client.post("/v1/api-keys", json={"name": "k", "scopes": ["owners:read"]})).json()
    signal = ConflictSignal(
        ConflictKind.NO_MATCH,
        ("ruleset", "1"),
        uuid.UUID(customer["id"]),
        territory_id=uuid.UUID(home["id"]),
    )
    async with app.state.session_factory() as session, session.begin():
        await record_signals(session, [signal], ruleset_version=1)
    (conflict,) = (await client.get("/v1/conflicts")).json()["items"]
    ruleset = (
        await client.post("/v1/rulesets", json={"name": "草案", "default_territory_id": home["id"]})
    ).json()
    rule = (
        await client.post(
            f"/v1/rulesets/{ruleset['id']}/rules",
            json={
                "name": "华东",
                "priority": 1,
                "condition": {"any_of": [{"all_of": []}]},
                "territory_id": home["id"],
            },
        )
    ).json()
    job = Job(
        kind=JobKind.ACTIVATION, status=JobStatus.SUCCEEDED, subject_id=uuid.UUID(ruleset["id"])
    )
    async with app.state.session_factory() as session, session.begin():
        session.add(job)
    return {
        "ruleset_id": ruleset["id"],
        "rule_id": rule["id"],
        "job_id": str(job.id),
        "customer_id": customer["id"],
        "territory_id": home["id"],
        "owner_id": owner["id"],
        "colleague_id": colleague["id"],
        "transfer_id": transfer["id"],
        "key_id": key["id"],
        "elsewhere_id": elsewhere["id"],
        "conflict_id": conflict["id"],
    }


async def snapshot(engine: AsyncEngine) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    async with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name not in BOOKKEEPING:
                result = await connection.execute(select(table))
                rows[table.name] = sorted(map(repr, result.all()))
    return rows


def test_every_operation_but_the_probes_needs_a_key() -> None:
    unprotected = {
        (method, path) for method, path, operation in OPERATIONS if not operation.get("security")
    }
    assert unprotected == PUBLIC


PROTECTED = [entry for entry in OPERATIONS if (entry[0], entry[1]) not in PUBLIC]


@pytest.mark.parametrize(("method", "path", "operation"), PROTECTED, ids=operation_ids)
async def test_without_a_key_the_answer_is_401(
    anonymous_client: httpx.AsyncClient,
    world: dict[str, str],
    method: str,
    path: str,
    operation: dict[str, Any],
) -> None:
    response = await call(anonymous_client, method, path, operation, world, key=None)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "operation"), PROTECTED, ids=operation_ids)
async def test_a_key_without_the_scope_gets_403(
    anonymous_client: httpx.AsyncClient,
    world: dict[str, str],
    make_key: KeyMaker,
    engine: AsyncEngine,
    method: str,
    path: str,
    operation: dict[str, Any],
) -> None:
    needed = set(required_scopes(operation))
    others = [scope for scope in Scope if scope not in needed and scope is not Scope.ADMIN]
    key = await make_key(*others)
    before = await snapshot(engine)

    response = await call(anonymous_client, method, path, operation, world, key=key)

    problem = assert_problem(response, 403, "forbidden")
    assert set(problem["missing_scopes"]) == {scope.value for scope in needed}
    assert await snapshot(engine) == before


WITH_IDS = [entry for entry in PROTECTED if "{" in entry[1]]


@pytest.mark.parametrize(("method", "path", "operation"), WITH_IDS, ids=operation_ids)
async def test_a_key_confined_elsewhere_gets_404_and_changes_nothing(
    anonymous_client: httpx.AsyncClient,
    world: dict[str, str],
    make_key: KeyMaker,
    engine: AsyncEngine,
    method: str,
    path: str,
    operation: dict[str, Any],
) -> None:
    confinable = [scope for scope in Scope if scope is not Scope.ADMIN]
    key = await make_key(*confinable, territory_ids=[uuid.UUID(world["elsewhere_id"])])
    before = await snapshot(engine)

    response = await call(anonymous_client, method, path, operation, world, key=key)

    if Scope.ADMIN in required_scopes(operation):
        assert_problem(response, 403, "forbidden")  # a confined key never holds admin
    else:
        assert_problem(response, 404, "not-found")
    assert await snapshot(engine) == before


# --- ids in the body --------------------------------------------------------------------------

# Fields ending in `_id` that name no resource of this service: business keys from other systems.
NOT_REFERENCES = {"external_id", "registration_id"}


def reference_fields(schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> set[str]:
    """The `…_id` / `…_ids` fields anywhere in a request body schema, references followed."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return set()
        return reference_fields(DOCUMENT["components"]["schemas"][name], seen | {name})
    found: set[str] = set()
    for nested in [*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", [])]:
        found |= reference_fields(nested, seen)
    if isinstance(schema.get("items"), dict):
        found |= reference_fields(schema["items"], seen)
    for name, nested in schema.get("properties", {}).items():
        if name.endswith(("_id", "_ids")) and name not in NOT_REFERENCES:
            found.add(name)
        found |= reference_fields(nested, seen)
    return found


def body_schema(operation: dict[str, Any]) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {})
    return dict(content.get("application/json", {}).get("schema", {}))


BODY_ID_OPERATIONS = {
    str(operation["operationId"]): (method, path)
    for method, path, operation in PROTECTED
    if reference_fields(body_schema(operation))
}


@dataclass(frozen=True)
class Refused:
    """The request is answered with this problem."""

    status: int
    slug: str


@dataclass(frozen=True)
class RefusedEach:
    """A batch answers 200 and fails each item: with this status, and the problem's slug or the
    pointer to the refused field as `reason`."""

    status: int | str
    reason: str

    def check(self, item: dict[str, Any]) -> None:
        reasons = {(item.get("problem") or {}).get("type", "").rsplit(":", 1)[-1]}
        reasons |= {error["pointer"] for error in item.get("errors") or []}
        assert (item["status"], self.reason in reasons) == (self.status, True), item


OUT_OF_SCOPE = Refused(403, "out-of-scope")
UNKNOWN = Refused(422, "invalid-reference")  # what lies outside does not exist for the key
NOT_ASSIGNABLE = Refused(422, "owner-not-assignable")  # not a member of the key's territory
CATCH_ALL: dict[str, Any] = {"any_of": [{"all_of": []}]}

# For each operation with ids in its body: bodies naming what lies outside the key's territory
# (`$name`: the id called so by the `abroad` fixture), and how the API refuses each. Ids in the
# path lie inside the territory, so the body is what is refused.
BODY_CASES: dict[str, list[tuple[dict[str, Any], Refused | RefusedEach]]] = {
    "create_customer": [
        (
            {"source": "crm", "external_id": "X1", "name": "子公司", "parent_id": "$outsider"},
            UNKNOWN,
        )
    ],
    "upsert_customers": [
        (
            {
                "items": [
                    {
                        "source": "crm",
                        "external_id": "$home_external_id",
                        "name": "改名",
                        "parent_id": "$outsider",
                    }
                ]
            },
            RefusedEach("error", "#/items/0/parent_id"),
        )
    ],
    "update_customer": [({"parent_id": "$outsider"}, UNKNOWN)],
    "merge_customer": [({"customer_id": "$outsider"}, UNKNOWN)],
    "assign_ownership": [
        ({"reason": "越界", "territory_id": "$elsewhere", "owner_id": "$stranger"}, OUT_OF_SCOPE),
        ({"reason": "越界", "owner_id": "$stranger"}, NOT_ASSIGNABLE),
    ],
    "create_transfer": [
        (
            {"customer_ids": ["$outsider"], "to_owner_id": "$stranger_colleague", "reason": "越界"},
            Refused(422, "transfer-refused"),
        ),
        (
            {
                "customer_ids": ["$customer_id"],
                "to_owner_id": "$stranger",
                "to_territory_id": "$elsewhere",
                "reason": "越界",
            },
            OUT_OF_SCOPE,
        ),
    ],
    "claim_customer": [({"owner_id": "$stranger"}, NOT_ASSIGNABLE)],
    "claim_customers": [
        (
            {"customer_ids": ["$outside_pooled"], "owner_id": "$stranger"},
            RefusedEach(404, "not-found"),
        )
    ],
    "release_customer": [
        ({"reason": "越界", "owner_id": "$stranger"}, Refused(409, "not-the-owner"))
    ],
    "hand_over": [({"to_owner_id": "$stranger", "reason": "越界"}, OUT_OF_SCOPE)],
    "create_territory": [({"name": "越界", "parent_id": "$elsewhere"}, UNKNOWN)],
    "update_territory": [({"parent_id": "$elsewhere"}, UNKNOWN)],
    "resolve_conflict": [
        (
            {
                "note": "越界",
                "action": {
                    "type": "assign",
                    "customer_id": "$customer_id",
                    "owner_id": "$stranger",
                    "territory_id": "$elsewhere",
                },
            },
            OUT_OF_SCOPE,
        )
    ],
    # Rule sets are global configuration: a confined key cannot create them or see any by id.
    "create_ruleset": [({"name": "越界", "default_territory_id": "$elsewhere"}, OUT_OF_SCOPE)],
    "update_ruleset": [({"default_territory_id": "$elsewhere"}, Refused(404, "not-found"))],
    "create_rule": [
        (
            {
                "name": "越界",
                "priority": 1,
                "condition": CATCH_ALL,
                "territory_id": "$elsewhere",
                "owner_id": "$stranger",
            },
            Refused(404, "not-found"),
        )
    ],
    "update_rule": [({"territory_id": "$elsewhere"}, Refused(404, "not-found"))],
    # A confined key never holds admin.
    "create_api_key": [
        (
            {"name": "越界", "scopes": ["owners:read"], "territory_ids": ["$elsewhere"]},
            Refused(403, "forbidden"),
        )
    ],
}
# Operations whose body ids are not looked up, with why.
BODY_IDS_NOT_LOOKED_UP = {
    # A stateless preview: `parent_id` is one of the facts the rules may test, never read.
    "resolve_customer",
}


def fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str) and template.startswith("$"):
        return ids[template[1:]]
    if isinstance(template, list):
        return [fill(value, ids) for value in template]
    if isinstance(template, dict):
        return {name: fill(value, ids) for name, value in template.items()}
    return template


@pytest.fixture
async def abroad(
    client: httpx.AsyncClient, engine: AsyncEngine, world: dict[str, str]
) -> dict[str, str]:
    """The world, plus the other territory's (华南) two members, a customer one of them owns and
    one waiting in its pool; and a customer waiting in the home territory's pool."""
    elsewhere = {"id": world["elsewhere_id"]}
    stranger, stranger_colleague = await create_owner(client), await create_owner(client)
    for member in (stranger, stranger_colleague):
        await client.put(f"/v1/territories/{elsewhere['id']}/members/{member['id']}", json={})
    outsider, outside_pooled, home_pooled = [await create_customer(client) for _ in range(3)]
    await place_customer(engine, outsider, elsewhere, stranger)
    await place_customer(engine, outside_pooled, elsewhere)
    await place_customer(engine, home_pooled, {"id": world["territory_id"]})
    home = (await client.get(f"/v1/customers/{world['customer_id']}")).json()
    return world | {
        "elsewhere": elsewhere["id"],
        "home_external_id": home["external_id"],
        "stranger": stranger["id"],
        "stranger_colleague": stranger_colleague["id"],
        "outsider": outsider["id"],
        "outside_pooled": outside_pooled["id"],
        "home_pooled": home_pooled["id"],
    }


def test_every_operation_with_ids_in_its_body_has_a_confinement_case() -> None:
    assert set(BODY_CASES) | BODY_IDS_NOT_LOOKED_UP == set(BODY_ID_OPERATIONS)
    assert not set(BODY_CASES) & BODY_IDS_NOT_LOOKED_UP


BODY_ENTRIES = [
    pytest.param(name, body, refusal, id=f"{name}-{index}")
    for name, cases in BODY_CASES.items()
    for index, (body, refusal) in enumerate(cases)
]


@pytest.mark.parametrize(("name", "body", "refusal"), BODY_ENTRIES)
async def test_a_confined_key_naming_ids_outside_its_territory_in_the_body_is_refused(
    anonymous_client: httpx.AsyncClient,
    abroad: dict[str, str],
    make_key: KeyMaker,
    engine: AsyncEngine,
    name: str,
    body: dict[str, Any],
    refusal: Refused | RefusedEach,
) -> None:
    method, path = BODY_ID_OPERATIONS[name]
    # The claimed customer is the one waiting in the key's territory's pool.
    in_path = abroad | ({"customer_id": abroad["home_pooled"]} if name == "claim_customer" else {})
    url = re.sub(r"\{(\w+)\}", lambda match: in_path[match.group(1)], path)
    confinable = [scope for scope in Scope if scope is not Scope.ADMIN]
    key = await make_key(*confinable, territory_ids=[uuid.UUID(abroad["territory_id"])])
    before = await snapshot(engine)

    response = await anonymous_client.request(
        method.upper(),
        url,
        json=fill(body, abroad),
        headers={"Authorization": f"Bearer {key}", "If-Match": "*"},
    )

    if isinstance(refusal, RefusedEach):
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert len(items) == 1
        refusal.check(items[0])
    else:
        assert_problem(response, refusal.status, refusal.slug)
    assert await snapshot(engine) == before
