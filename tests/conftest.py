"""Fixtures: a real database per backend built by the migrations, and the app over HTTP.

Every API test runs on SQLite and on PostgreSQL. Each backend gets a database of its own for the
session, made by `alembic upgrade head`; after each test every table is emptied. The PostgreSQL
server comes from TEST_DATABASE_URL, the local server, or one started from local binaries
(tests/postgres_server.py). With CI=true a missing PostgreSQL fails the run instead of skipping.

Under pytest-xdist (`make test` runs two workers) the controller finds or starts the server once
and hands it to its workers; each worker then makes databases of its own, as any session does.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.api_keys.schemas import ApiKeyCreate
from territory_service.api_keys.service import issue_key
from territory_service.config import Settings
from territory_service.db import Base, create_engine
from territory_service.main import create_app
from territory_service.migrate import upgrade_to_head
from territory_service.security.scopes import Scope
from tests import postgres_server
from tests.openapi_conformance import DeclaredResponses

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
# For tests of PostgreSQL's own behaviour (row locks, commit order): `pytestmark = ...` or a
# decorator; the test then runs once, on PostgreSQL, and is never skipped in CI.
POSTGRESQL_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Hypothesis: no per-example deadline for any property test. How long an example takes depends
# on the machine and on what else a full run is doing, so a deadline fails for timing, not for
# a bug; each property test instead keeps its own max_examples to what the layer can afford.
hypothesis.settings.register_profile("territory", deadline=None)
hypothesis.settings.load_profile("territory")


def pytest_configure(config: pytest.Config) -> None:
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None and _WORKER_POSTGRES in worker_input:
        # An xdist worker: the controller already found (or started, and will stop) the server.
        url, reason = worker_input[_WORKER_POSTGRES]
        server = None
        if url:
            server = postgres_server.PostgresServer(url=url, how="from the xdist controller")
    else:
        server, reason = postgres_server.find_or_start_postgres()
    if server is None and IN_CI:
        raise pytest.UsageError(f"CI=true and no PostgreSQL could be found or started: {reason}")
    config.stash[_POSTGRES] = (server, reason)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, in the controller: tell each worker which server to use."""
    server, reason = node.config.stash[_POSTGRES]
    node.workerinput[_WORKER_POSTGRES] = (server.url if server is not None else "", reason)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order to run in: the SQLite tests, then those on no session database, then the
    PostgreSQL ones, and in each of these groups the tests marked `long` first.

    pytest has already grouped the tests by backend, so that each session database is built
    once; this keeps that. It puts the long tests where parallel workers start on them rather
    than finish on them alone: `make test` runs two pytest-xdist workers (`--dist worksteal`),
    which begin on the first and the second half of this order, one backend each."""

    def key(item: pytest.Item) -> tuple[int, bool]:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec is not None else None
        group = {"sqlite": 0, None: 1, "postgresql": 2}.get(backend, 1)
        return group, item.get_closest_marker("long") is None

    items.sort(key=key)  # stable: within a group pytest's own order stays


def pytest_unconfigure(config: pytest.Config) -> None:
    server, _ = config.stash.get(_POSTGRES, (None, ""))
    if server is not None and server.stop is not None:
        server.stop()


def pytest_report_header(config: pytest.Config) -> str:
    server, reason = config.stash[_POSTGRES]
    if server is None:
        return f"postgresql: unavailable ({reason}); PostgreSQL tests are skipped"
    return f"postgresql: {server.how}"


_POSTGRES = pytest.StashKey[tuple[postgres_server.PostgresServer | None, str]]()
_WORKER_POSTGRES = "territory_postgres"


def postgres_admin_url(config: pytest.Config) -> str:
    server, reason = config.stash[_POSTGRES]
    if server is None:
        pytest.skip(f"no PostgreSQL: {reason}")
    return server.url


def _session_database_name() -> str:
    return f"ts_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database of each backend, for the whole session."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory(prefix="territory-test-") as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'test.db'}"
            upgrade_to_head(url)
            yield url
        return
    admin_url = postgres_admin_url(request.config)
    name = _session_database_name()
    url = asyncio.run(postgres_server.create_database(admin_url, name))
    try:
        upgrade_to_head(url)
        yield url
    finally:
        asyncio.run(postgres_server.drop_database(admin_url, name))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, db_pool_size=20, db_max_overflow=20)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def backend(engine: AsyncEngine) -> str:
    return engine.dialect.name


async def empty_all_tables(engine: AsyncEngine) -> None:
    """Every table empty and every id sequence back at its start, as a new database has them."""
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # DELETE, children first, rather than TRUNCATE: a test leaves a few rows, and
            # TRUNCATE gives all tables new files, ~80 ms each time; DELETE takes ~1 ms. A
            # self-referencing table loses all its rows in one statement, so its keys hold.
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))
            # What TRUNCATE's RESTART IDENTITY did: the serial ids start from 1 again.
            sequences = await connection.execute(
                text(
                    "SELECT sequence_schema, sequence_name FROM information_schema.sequences"
                    " WHERE sequence_schema = current_schema()"
                )
            )
            for schema, name in sequences.all():
                await connection.execute(text(f'ALTER SEQUENCE "{schema}"."{name}" RESTART'))
        else:
            # Self-referencing rows (groups, sub-territories): check keys once, at commit.
            await connection.execute(text("PRAGMA defer_foreign_keys = ON"))
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def app(engine: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        yield app
    await empty_all_tables(engine)


@pytest.fixture(scope="session")
def declared_responses() -> DeclaredResponses:
    return DeclaredResponses(create_app(Settings(database_url="sqlite+aiosqlite://")))


KeyMaker = Callable[..., Awaitable[str]]


@pytest.fixture
def make_key(app: FastAPI) -> KeyMaker:
    """Issue an API key straight through the service; returns its secret."""

    async def make(*scopes: Scope, territory_ids: list[uuid.UUID] | None = None) -> str:
        async with app.state.session_factory() as session:
            _, secret = await issue_key(
                session,
                data=ApiKeyCreate(name="test", scopes=list(scopes), territory_ids=territory_ids),
                created_by=None,
            )
        return secret

    return make


def http_client(
    app: FastAPI, declared_responses: DeclaredResponses, key: str | None = None
) -> httpx.AsyncClient:
    """An HTTP client for the app; every answer must be one its operation declares."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://territory.test",
        headers={"Authorization": f"Bearer {key}"} if key else None,
        event_hooks={"response": [declared_responses.check]},
    )


@pytest.fixture
async def anonymous_client(
    app: FastAPI, declared_responses: DeclaredResponses
) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app, declared_responses) as client:
        yield client


@pytest.fixture
async def client(
    app: FastAPI, declared_responses: DeclaredResponses, make_key: KeyMaker
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with an admin key."""
    async with http_client(app, declared_responses, await make_key(Scope.ADMIN)) as client:
        yield client
