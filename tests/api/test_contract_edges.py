"""Values one layer would take and the next refuse are refused at the edge, with a 422 naming the
field, the same way on every backend; and the document says what the server refuses."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Integer, SmallInteger, String
from sqlalchemy.orm import DeclarativeBase

from territory_service.api_keys.models import ApiKey
from territory_service.customers.models import Customer
from territory_service.owners.models import Owner
from territory_service.ownership.models import OwnershipEvent
from territory_service.pagination import encode_cursor
from territory_service.pool.models import PoolRules
from territory_service.rulesets.models import RuleRow, RuleSet
from territory_service.schemas import MAX_EXACT_NUMBER
from territory_service.territories.models import Territory, TerritoryMember
from territory_service.transfers.models import Transfer
from tests.api.helpers import activate, add_rule, assert_problem, customer_body, where

NUL = "\u0000"


async def customer_count(client: httpx.AsyncClient) -> int:
    return len((await client.get("/v1/customers", params={"limit": 1000})).json()["items"])


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [
        ("source", f"crm{NUL}", "#/source"),
        ("name", f"华东{NUL}机械", "#/name"),
        ("industry", NUL, "#/industry"),
        ("tags", ["ok", f"v{NUL}ip"], "#/tags/1"),
        ("attributes", {"note": f"a{NUL}"}, "#/attributes/note"),
        ("source", "s" * 65, "#/source"),
    ],
)
async def test_text_a_column_cannot_hold_is_refused_at_its_field(
    client: httpx.AsyncClient, field: str, value: Any, pointer: str
) -> None:
    before = await customer_count(client)
    response = await client.post("/v1/customers", json=customer_body(**{field: value}))
    problem = assert_problem(response, 422, "validation-error")
    assert [error["pointer"] for error in problem["errors"]] == [pointer]
    assert await customer_count(client) == before


async def test_a_lone_surrogate_is_not_text(client: httpx.AsyncClient) -> None:
    # json.dumps would escape it the same way; written out to show what travels.
    body = json.dumps(customer_body()).replace('"name": "', '"name": "\\ud800', 1)
    response = await client.post(
        "/v1/customers", content=body, headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422, "validation-error")
    assert [error["pointer"] for error in problem["errors"]] == ["#/name"]


@pytest.mark.parametrize(
    ("path", "parameter"),
    [("/v1/customers", "industry"), ("/v1/customers", "tag"), ("/v1/audit", "resource_id")],
)
async def test_a_nul_in_a_query_filter_names_the_parameter(
    client: httpx.AsyncClient, path: str, parameter: str
) -> None:
    response = await client.get(path, params={parameter: f"x{NUL}"})
    problem = assert_problem(response, 422, "validation-error")
    assert [(e["location"], e["parameter"]) for e in problem["errors"]] == [("query", parameter)]


async def test_a_source_as_long_as_its_column_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/customers", json=customer_body(source="s" * 64))
    assert response.status_code == 201, response.text


async def test_a_cursor_beyond_a_bigint_is_invalid_not_a_failure(
    client: httpx.AsyncClient,
) -> None:
    customer = (await client.post("/v1/customers", json=customer_body())).json()
    reads = [
        ("/v1/events", "after"),
        (f"/v1/customers/{customer['id']}/history", "cursor"),
        ("/v1/audit", "cursor"),
    ]
    for path, parameter in reads:
        largest = await client.get(path, params={parameter: encode_cursor(2**63 - 1)})
        assert largest.status_code == 200, (path, largest.text)
        for key in (2**63, -(2**63) - 1, 2**200):
            response = await client.get(path, params={parameter: encode_cursor(key)})
            problem = assert_problem(response, 422, "invalid-cursor")
            assert problem["errors"][0]["parameter"] == parameter


# --- numbers: every number a rule compares lies within ±(2^53 - 1), on every path ---------


@pytest.mark.parametrize("number", [MAX_EXACT_NUMBER + 1, -MAX_EXACT_NUMBER - 1, 2**70, 1e300])
async def test_a_number_beyond_the_exact_range_is_refused_on_every_path(
    client: httpx.AsyncClient, regions: dict[str, Any], number: float
) -> None:
    created = await client.post("/v1/customers", json=customer_body(attributes={"big": number}))
    resolved = await client.post("/v1/resolve", json={"attributes": {"big": number}})
    rule = await client.post(
        f"/v1/rulesets/{regions['ruleset']['id']}/rules",
        json={
            "name": "big",
            "priority": 1,
            "condition": where("attributes.amount", "lte", number),
            "territory_id": regions["south"]["id"],
        },
    )
    for response, pointer in (
        (created, "#/attributes/big"),
        (resolved, "#/attributes/big"),
        (rule, "#/condition/any_of/0/all_of/0/value"),
    ):
        problem = assert_problem(response, 422, "validation-error")
        assert {error["pointer"] for error in problem["errors"]} == {pointer}, problem


@pytest.mark.parametrize(
    ("op", "bound", "fact", "matches"),
    [
        ("lte", MAX_EXACT_NUMBER, MAX_EXACT_NUMBER, True),
        ("lt", MAX_EXACT_NUMBER, MAX_EXACT_NUMBER, False),
        ("eq", MAX_EXACT_NUMBER, MAX_EXACT_NUMBER - 1, False),
        ("eq", MAX_EXACT_NUMBER, MAX_EXACT_NUMBER, True),
        ("in", [MAX_EXACT_NUMBER - 1], MAX_EXACT_NUMBER, False),
        ("gte", -MAX_EXACT_NUMBER, -MAX_EXACT_NUMBER, True),
        ("gt", -MAX_EXACT_NUMBER, -MAX_EXACT_NUMBER, False),
        ("gt", MAX_EXACT_NUMBER - 1, float(MAX_EXACT_NUMBER), True),
    ],
)
async def test_numbers_at_the_edge_of_the_range_are_compared_exactly(
    client: httpx.AsyncClient,
    regions: dict[str, Any],
    op: str,
    bound: Any,
    fact: float,
    matches: bool,
) -> None:
    await add_rule(
        client,
        regions["ruleset"],
        name="amount",
        priority=1,
        condition=where("attributes.amount", op, bound),
        territory_id=regions["south"]["id"],
    )
    await activate(client, regions["ruleset"])
    expected = regions["south"]["id"] if matches else regions["country"]["id"]
    resolved = await client.post("/v1/resolve", json={"attributes": {"amount": fact}})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["territory_id"] == expected, (resolved.json(), regions)
    body = customer_body(province="北京", attributes={"amount": fact})
    customer = await client.post("/v1/customers", json=body)
    assert customer.status_code == 201, customer.text
    assert customer.json()["ownership"]["territory_id"] == expected


# --- the document says what the server refuses ---------------------------------------------


def _request_strings(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every string schema a client may send in a body or a query, with where it is."""
    components = document["components"]["schemas"]
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(schema: dict[str, Any], where: str, seen: frozenset[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(components[name], name, seen | {name})
            return
        if schema.get("type") == "string" and not {"enum", "const", "format"} & schema.keys():
            found.append((where, schema))
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for part in schema.get(key, []):
                walk(part, where, seen)
        for key in ("properties", "patternProperties"):
            for name, part in schema.get(key, {}).items():
                walk(part, f"{where}.{name}", seen)
        for key in ("items", "additionalProperties", "propertyNames"):
            if isinstance(schema.get(key), dict):
                walk(schema[key], f"{where}.{key}", seen)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("query", "path"):
                    name = f"{method} {path} ?{parameter['name']}"
                    walk(parameter["schema"], name, frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content["schema"], f"{method} {path}", frozenset())
    return found


def test_every_request_string_says_it_cannot_hold_a_nul(app: FastAPI) -> None:
    strings = _request_strings(app.openapi())
    assert len(strings) > 50
    unsafe = [
        where
        for where, schema in strings
        if "pattern" not in schema or re.search(schema["pattern"], f"a{NUL}b")
    ]
    assert unsafe == []


def test_no_request_pattern_uses_a_class_that_regex_engines_read_differently(app: FastAPI) -> None:
    """`\\s`, `\\w`, `\\d` and `\\b` mean other sets in ECMA regexes (which readers of the
    document use) than in Python's (which the server uses): U+0085 is space to Python only. A
    pattern spells its sets out, so that the document refuses exactly what the server does."""
    shorthand = re.compile(r"(?<!\\)\\[sSwWdDbB]")
    ambiguous = [
        (where, schema["pattern"])
        for where, schema in _request_strings(app.openapi())
        if shorthand.search(schema.get("pattern", ""))
    ]
    assert ambiguous == []


# Request schema → the table its fields land in. A field the API allows longer, or a number
# larger, than its column can hold would pass validation and fail at the database.
STORED_AS: dict[str, type[DeclarativeBase]] = {
    "CustomerCreate": Customer,
    "CustomerUpdate": Customer,
    "OwnerCreate": Owner,
    "OwnerUpdate": Owner,
    "TerritoryCreate": Territory,
    "TerritoryUpdate": Territory,
    "RuleSetCreate": RuleSet,
    "RuleSetUpdate": RuleSet,
    "RuleCreate": RuleRow,
    "RuleUpdate": RuleRow,
    "ApiKeyCreate": ApiKey,
    "MemberPut": TerritoryMember,
    "PoolRulesPut": PoolRules,
    "TransferCreate": Transfer,
    "OwnershipAssign": OwnershipEvent,
    "Release": OwnershipEvent,
    "Handover": OwnershipEvent,
}
_COLUMN_RANGES = {SmallInteger: 2**15 - 1, Integer: 2**31 - 1}


def _branches(schema: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    parts = [part for part in schema.get("anyOf", [schema]) if part.get("type") != "null"]
    return [components[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p for p in parts]


def test_no_request_field_is_larger_than_the_column_it_is_kept_in(app: FastAPI) -> None:
    components = app.openapi()["components"]["schemas"]
    checked, too_large = 0, []
    for schema_name, model in STORED_AS.items():
        columns = model.__table__.columns
        for field, schema in components[schema_name]["properties"].items():
            if field not in columns:
                continue
            column_type = columns[field].type
            for branch in _branches(schema, components):
                if isinstance(column_type, String) and column_type.length is not None:
                    checked += 1
                    longest = max(map(len, branch["enum"])) if "enum" in branch else None
                    if (longest or branch.get("maxLength", float("inf"))) > column_type.length:
                        too_large.append(f"{schema_name}.{field} > {column_type.length}")
                for kind, largest in _COLUMN_RANGES.items():
                    if type(column_type) is kind:
                        checked += 1
                        if branch.get("maximum", float("inf")) > largest:
                            too_large.append(f"{schema_name}.{field} > {largest}")
    assert checked > 30
    assert too_large == [], too_large


def test_a_patch_field_is_nullable_in_the_document_exactly_when_null_is_accepted(
    app: FastAPI,
) -> None:
    """A generated client must not be able to build a null the server refuses, nor be kept from
    sending a null that clears a fact."""
    from territory_service.schemas import InputModel

    def models(base: type[InputModel]) -> list[type[InputModel]]:
        return [base, *(m for sub in base.__subclasses__() for m in models(sub))]

    components = app.openapi()["components"]["schemas"]
    checked, wrong = 0, []
    for model in models(InputModel):
        schema = components.get(model.__name__)
        if schema is None or not model.__name__.endswith("Update"):
            continue
        for field, declared in schema["properties"].items():
            nullable = any(part.get("type") == "null" for part in declared.get("anyOf", []))
            try:
                model.model_validate({field: None})
                accepted = True
            except ValueError as exc:
                accepted = all(error["loc"][:1] != (field,) for error in exc.errors())  # type: ignore[attr-defined]
            checked += 1
            if nullable != accepted:
                wrong.append(f"{model.__name__}.{field}: nullable={nullable} accepted={accepted}")
    assert checked > 20
    assert wrong == []


def test_a_dict_with_listed_keys_admits_no_other_key(app: FastAPI) -> None:
    """pydantic shows constrained keys as `patternProperties`, which alone would let a client
    send any other key (`attributes`, pool rules by tier), which the server refuses."""
    found: list[dict[str, Any]] = []

    def walk(schema: Any) -> None:
        if isinstance(schema, dict):
            if "patternProperties" in schema:
                found.append(schema)
            for value in schema.values():
                walk(value)
        elif isinstance(schema, list):
            for value in schema:
                walk(value)

    walk(app.openapi()["components"]["schemas"])
    assert len(found) >= 3
    assert all(schema.get("additionalProperties") is False for schema in found)


def test_if_match_is_required_where_its_absence_is_a_428(app: FastAPI) -> None:
    document = app.openapi()
    checked = 0
    for operations in document["paths"].values():
        for operation in operations.values():
            if_match = [p for p in operation.get("parameters", []) if p["name"] == "If-Match"]
            if if_match:
                checked += 1
                assert if_match[0].get("required", False) == ("428" in operation["responses"]), (
                    operation["operationId"]
                )
    assert checked > 10


async def test_every_operation_with_a_body_declares_the_400_for_bytes_that_are_not_utf8(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The client checks each answer against the declared statuses; this sends every body
    operation bytes that are not UTF-8."""
    zero = "00000000-0000-7000-8000-000000000000"
    sent = 0
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            headers = {"Content-Type": "application/json"}
            if "428" in operation["responses"]:
                headers["If-Match"] = "*"
            url = re.sub(r"\{[^}]+\}", zero, path)
            response = await client.request(
                method, url, content=b'{"name": "\xff"}', headers=headers
            )
            sent += 1
            assert response.status_code == 400, (method, path, response.text)
    assert sent > 20


def test_every_request_example_is_a_request_the_server_takes(app: FastAPI) -> None:
    from territory_service.schemas import InputModel

    def models(base: type[InputModel]) -> list[type[InputModel]]:
        return [base, *(m for sub in base.__subclasses__() for m in models(sub))]

    by_name = {model.__name__: model for model in models(InputModel)}
    checked = 0
    for name, schema in app.openapi()["components"]["schemas"].items():
        for example in schema.get("examples", []) if name in by_name else []:
            by_name[name].model_validate(example)
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("threshold", [5e-324, 2.2250738585e-313, 1e-9])
async def test_a_tiny_similarity_threshold_lists_every_similar_name(
    client: httpx.AsyncClient, threshold: float
) -> None:
    """A threshold of (almost) nothing bounds no name length; its bound must not become an
    infinite or out-of-range number on the way to the database (schemathesis found a 500)."""
    first = (await client.post("/v1/customers", json=customer_body(name="华东机械"))).json()
    await client.post("/v1/customers", json=customer_body(name="西南电子机械有限公司"))
    response = await client.get(
        f"/v1/customers/{first['id']}/duplicates", params={"min_similarity": threshold}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 1
