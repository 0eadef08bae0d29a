"""Liveness, readiness and the JSON logs."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.config import Settings
from territory_service.health.readiness import expected_migration
from territory_service.logs import JSONFormatter, request_id_var
from territory_service.main import create_app
from tests.api.helpers import assert_problem


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_migration_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["migration"] == expected_migration()


async def test_readyz_is_unavailable_when_the_schema_is_behind(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    try:
        problem = assert_problem(await client.get("/readyz"), 503, "not-ready")
        assert problem["migration"] == "0000"
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :head"),
                {"head": expected_migration()},
            )


async def test_readyz_is_unavailable_without_a_database() -> None:
    app = create_app(Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
    assert_problem(response, 503, "not-ready")


def test_log_lines_are_json_with_the_request_id_and_extras() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.status = 201
    token = request_id_var.set("req-1")
    try:
        line = json.loads(JSONFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert (line["message"], line["request_id"], line["status"]) == ("hello world", "req-1", 201)


@pytest.mark.parametrize("level", ["INFO"])
async def test_each_request_writes_one_access_line(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, level: str
) -> None:
    with caplog.at_level(level, logger="territory_service.access"):
        response = await client.get("/healthz")
    lines = [r for r in caplog.records if r.name == "territory_service.access"]
    assert len(lines) == 1
    assert lines[0].__dict__["status"] == 200
    assert response.headers["x-request-id"]
