"""Tests for tests/postgres_server.py (the helper that finds or starts PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests import postgres_server
from tests.postgres_server import (
    PostgresServer,
    create_database,
    drop_database,
    find_or_start_postgres,
    find_pg_binaries,
    normalise_url,
    quote_database_name,
    start_temporary_server,
    to_asyncpg_dsn,
    validate_database_name,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgres://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgresql+asyncpg://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("  postgresql://u@h/db\n", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u:s%40cret@h:1/db", "postgresql+asyncpg://u:s%40cret@h:1/db"),
        ("postgres://u@h/db?ssl=require", "postgresql+asyncpg://u@h/db?ssl=require"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize(
    "given",
    ["mysql://u@h/db", "postgresql+psycopg://u@h/db", "sqlite+aiosqlite:///x.db", "not a url"],
)
def test_normalise_url_rejects_other_schemes(given: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        normalise_url(given)


def test_to_asyncpg_dsn_keeps_password_and_drops_driver() -> None:
    dsn = to_asyncpg_dsn("postgresql+asyncpg://u:s%40cret@h:6543/db?ssl=disable")
    assert dsn == "postgresql://u:s%40cret@h:6543/db?ssl=disable"


@pytest.mark.parametrize("name", ["test", "territory_test_1a2b", "_x", "0", "a" * 63])
def test_valid_database_names(name: str) -> None:
    assert validate_database_name(name) == name
    assert quote_database_name(name) == f'"{name}"'


@pytest.mark.parametrize(
    "name",
    ["", "Test", "a-b", "a b", 'x"; DROP DATABASE y; --', "é", "a" * 64, "db\n"],
)
def test_invalid_database_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid database name"):
        validate_database_name(name)


def test_env_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", "postgres://someone@db.example:5433/x")
    server, reason = find_or_start_postgres()
    assert server == PostgresServer(
        url="postgresql+asyncpg://someone@db.example:5433/x", how="TEST_DATABASE_URL"
    )
    assert reason == ""


def test_unusable_env_url_gives_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", "mysql://u@h/db")
    server, reason = find_or_start_postgres()
    assert server is None
    assert "TEST_DATABASE_URL" in reason


def test_nothing_available_returns_all_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.setattr(postgres_server, "_try_local", lambda port=5432: (None, f"no {port}"))
    monkeypatch.setattr(postgres_server, "_try_start_cluster", lambda: (None, "no cluster"))
    monkeypatch.setattr(postgres_server, "find_pg_binaries", lambda: None)
    server, reason = find_or_start_postgres()
    assert server is None
    assert "TEST_DATABASE_URL not set" in reason
    assert "no 5432" in reason
    assert "no cluster" in reason
    assert "no initdb/pg_ctl" in reason


def test_configured_port(tmp_path: Path) -> None:
    conf = tmp_path / "postgresql.conf"
    conf.write_text("#port = 1\nport = 5433\t\t# comment\n")
    assert postgres_server._configured_port(conf) == 5433
    assert postgres_server._configured_port(tmp_path / "missing.conf") == 5432


def test_run_async_works_inside_a_running_loop() -> None:
    async def inner() -> int:
        return 42

    async def outer() -> int:
        return postgres_server._run_async(inner())

    assert postgres_server._run_async(inner()) == 42
    assert asyncio.run(outer()) == 42


def test_temporary_server_lifecycle() -> None:
    """Really start a throw-away server, use a per-session database, stop it (about 1-2 s)."""
    if find_pg_binaries() is None:
        pytest.skip("no initdb/pg_ctl binaries on PATH or in /usr/lib/postgresql/*/bin")
    started = time.monotonic()
    server, reason = start_temporary_server()
    assert server is not None, reason
    assert server.how == "temporary server"
    assert server.stop is not None
    try:
        assert postgres_server.probe(server.url) is None

        async def use_database() -> str:
            url = await create_database(server.url, "session_db_1")
            try:
                conn = await postgres_server._connect(url)
                try:
                    name: str = await conn.fetchval("SELECT current_database()")
                finally:
                    await conn.close()
            finally:
                await drop_database(server.url, "session_db_1")
            await drop_database(server.url, "session_db_1")  # IF EXISTS: no error
            return name

        assert asyncio.run(use_database()) == "session_db_1"
    finally:
        server.stop()
    server.stop()  # idempotent
    assert postgres_server.probe(server.url, timeout=1.0) is not None
    assert time.monotonic() - started < 30
