"""Every error is an RFC 9457 problem document with a request id and no internals."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

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
