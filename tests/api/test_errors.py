"""Every error is an RFC 9457 problem document with a request id and no internals."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from territory_service.api.problems import json_pointer, nested_pointer
from tests.api.helpers import assert_problem


async def test_unknown_route_is_a_not_found_problem(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/nope"), 404, "not-found")
    assert problem["instance"] == "/nope"


async def test_wrong_method_is_a_method_not_allowed_problem(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/customers")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]


async def test_request_id_is_taken_from_the_caller_or_made_up(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "crm-42.abc"})
    assert given.headers["x-request-id"] == "crm-42.abc"
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
    assert len(unsafe.headers["x-request-id"]) == 32


async def test_unexpected_failure_is_a_500_problem_without_internals_and_is_logged(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        raise RuntimeError("secret connection string postgres://admin:hunter2@db")

    app.add_api_route("/explode", explode)

    with caplog.at_level(logging.ERROR, logger="territory_service.access"):
        response = await client.get("/explode", headers={"X-Request-ID": "req-500"})

    problem = assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text
    assert problem["request_id"] == "req-500"
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged
    assert logged[0].exc_info is not None
    assert "hunter2" in str(logged[0].exc_info[1])


async def test_every_validation_error_is_listed_with_its_location(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/customers?unused=1",
        json={"source": "crm", "name": "", "potential_score": 500, "colour": "red"},
    )
    problem = assert_problem(response, 422, "validation-error")
    pointers = sorted(error["pointer"] for error in problem["errors"])
    assert pointers == ["#/colour", "#/external_id", "#/name", "#/potential_score"]


async def test_bad_query_parameters_name_the_parameter(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/customers", params={"territory_id": "east"})
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0] == {
        "detail": problem["errors"][0]["detail"],
        "type": "uuid_parsing",
        "location": "query",
        "parameter": "territory_id",
    }


async def test_malformed_json_points_at_the_whole_body_and_names_where_decoding_stopped(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"items": [\n  {"source": "crm", "name": }\n]}'

    response = await client.post(
        "/v1/customers/batch", content=body, headers={"content-type": "application/json"}
    )

    problem = assert_problem(response, 422, "validation-error")
    detail = "the body is not valid JSON: Expecting value at line 2, column 29 (character 40)"
    assert problem["errors"] == [
        {"detail": detail, "type": "json_invalid", "location": "body", "pointer": "#"}
    ]
    assert problem["detail"] == detail


async def test_a_body_of_the_wrong_shape_points_at_the_whole_body(
    client: httpx.AsyncClient,
) -> None:
    problem = assert_problem(await client.post("/v1/customers", json=[]), 422, "validation-error")
    assert [error["pointer"] for error in problem["errors"]] == ["#"]


@pytest.mark.parametrize(
    ("parts", "pointer"),
    [
        ((), "#"),
        (("items", 3, "name"), "#/items/3/name"),
        (("a/b", "m~n"), "#/a~1b/m~0n"),
        (("~1",), "#/~01"),
        (("", "c%d", "e f"), "#//c%25d/e%20f"),
        (("上海",), "#/%E4%B8%8A%E6%B5%B7"),
    ],
)
def test_json_pointer_escapes_keys_as_rfc_6901_fragments(
    parts: tuple[str | int, ...], pointer: str
) -> None:
    assert json_pointer(*parts) == pointer


def test_a_pointer_within_an_item_is_made_absolute_within_the_request() -> None:
    assert nested_pointer("#/parent_id", "items", 7) == "#/items/7/parent_id"
    assert nested_pointer("#", "items", 7) == "#/items/7"
    with pytest.raises(ValueError, match="not a JSON pointer"):
        nested_pointer("parent_id", "items", 7)
