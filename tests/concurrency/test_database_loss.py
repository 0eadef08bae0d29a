"""The database going away answers 503 `database-unavailable` with Retry-After, never 500,
whichever step meets it (opening a connection, a statement, the commit), and leaves nothing
half-written.

The database goes away through `FlakyPostgres` (`flaky_postgres.py`), a proxy in front of the
real server that plays what a client sees of a restart, of a cut connection, or of a session
failed at a chosen statement: restarting the real server would take it away from every other
test. Where no server is needed at all (a port nobody listens on, a server that only refuses),
none is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from territory_service.api.dependencies import SessionDep
from territory_service.config import Settings
from territory_service.main import create_app
from territory_service.transaction import database_unavailable, transaction
from tests.api.helpers import assert_problem
from tests.concurrency.flaky_postgres import (
    SHUTTING_DOWN,
    STARTING_UP,
    TOO_MANY_CLIENTS,
    Cut,
    FlakyPostgres,
    Trap,
)
from tests.concurrency.servers import free_port, issue_admin_key
from tests.conftest import http_client
from tests.openapi_conformance import DeclaredResponses
from tests.postgres_server import to_asyncpg_dsn

UNAVAILABLE = "urn:territory-service:problem:database-unavailable"
# A well-formed key: with no database nobody can tell it from a real one.
SOME_KEY = "tsk_" + "k" * 43


@pytest.fixture
async def flaky_postgres(fresh_postgres_url: str) -> AsyncIterator[FlakyPostgres]:
    """The test's own database, behind a proxy that can take it away."""
    url = make_url(fresh_postgres_url)
    proxy = FlakyPostgres((url.host or "127.0.0.1", url.port or 5432))
    proxy.listen()
    try:
        yield proxy
    finally:
        await proxy.close()


# --------------------------------------------------------------------------- the service


@contextlib.asynccontextmanager
async def serving(database_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(
        Settings(
            database_url=database_url,
            db_pool_size=10,
            db_max_overflow=10,
            pool_reclaim_interval_seconds=0,
        )
    )
    async with app.router.lifespan_context(app):
        yield app


def assert_unavailable(response: httpx.Response) -> None:
    request = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 503, f"{request}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", request
    assert response.json()["type"] == UNAVAILABLE, f"{request}: {response.text}"
    assert response.headers["retry-after"].isdigit(), request


def unhandled_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the last-resort handler logged: each one answered 500."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "territory_service.access" and record.levelno >= logging.ERROR
    ]


async def answer(response: Any) -> dict[str, Any]:
    result = await response
    assert result.is_success, f"{result.request.method} {result.request.url}: {result.text}"
    body: dict[str, Any] = result.json() if result.content else {}
    return body | {"location": result.headers.get("location")}


async def activate_rules(client: httpx.AsyncClient) -> None:
    """An active rule set that places every customer in 全国: a customer created is then
    written with its ownership row and its first event, in one transaction."""
    country = await answer(client.post("/v1/territories", json={"name": "全国"}))
    owner = await answer(client.post("/v1/owners", json={"external_id": "zhang", "name": "张"}))
    await answer(client.put(f"/v1/territories/{country['id']}/members/{owner['id']}", json={}))
    ruleset = await answer(
        client.post("/v1/rulesets", json={"name": "2027", "default_territory_id": country["id"]})
    )
    activation = await answer(client.post(f"/v1/rulesets/{ruleset['id']}/activate"))
    while (job := await answer(client.get(activation["location"])))["status"] in (
        "queued",
        "running",
    ):
        await asyncio.sleep(0.02)
    assert job["status"] == "succeeded", job


@dataclass(frozen=True)
class Stored:
    id: uuid.UUID
    owned: bool
    events: int


async def stored_customers(database_url: str) -> dict[str, Stored]:
    """Every customer in the database by external id, with what was written along with it."""
    connection = await asyncpg.connect(to_asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT c.external_id, c.id, o.customer_id IS NOT NULL AS owned, "
            "(SELECT count(*) FROM ownership_events AS e WHERE e.customer_id = c.id) AS events "
            "FROM customers AS c LEFT JOIN ownerships AS o ON o.customer_id = c.id"
        )
    finally:
        await connection.close()
    return {row["external_id"]: Stored(row["id"], row["owned"], row["events"]) for row in rows}


def half_written(stored: dict[str, Stored]) -> list[str]:
    return [key for key, row in stored.items() if not row.owned or row.events != 1]


def customer(external_id: str) -> dict[str, str]:
    return {"source": "crm", "external_id": external_id, "name": f"客户{external_id}"}


# --------------------------------------------------------------------------- what counts as gone


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> DBAPIError:
    """`orig` as SQLAlchemy raises it from a statement."""
    return DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


def _with_sqlstate(error: Exception, sqlstate: str) -> Exception:
    error.sqlstate = sqlstate  # type: ignore[attr-defined]
    return error


UNAVAILABLE_ERRORS: dict[str, BaseException] = {
    "admin shutdown 57P01, raw": asyncpg.exceptions.AdminShutdownError("terminating"),
    "crash shutdown 57P02, wrapped": _wrapped(asyncpg.exceptions.CrashShutdownError("crash")),
    "starting up 57P03, wrapped": _wrapped(asyncpg.exceptions.CannotConnectNowError("starting")),
    "idle session ended 57P05": asyncpg.exceptions.IdleSessionTimeoutError("idle"),
    "too many connections 53300": _wrapped(asyncpg.exceptions.TooManyConnectionsError("full")),
    "connection does not exist 08003": asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
    "connection failure 08006": _wrapped(asyncpg.exceptions.ConnectionFailureError("failed")),
    "cannot connect 08001 (db.create_engine)": _wrapped(
        _with_sqlstate(OSError("refused"), "08001")
    ),
    "connection SQLAlchemy found dead": _wrapped(Exception("closed"), invalidated=True),
    "no pooled connection in time": PoolTimeout("QueuePool limit reached"),
}
BUGS: dict[str, BaseException] = {
    "protocol violation 08P01": _wrapped(asyncpg.exceptions.ProtocolViolationError("bind")),
    "statement timeout 57014": _wrapped(asyncpg.exceptions.QueryCanceledError("timeout")),
    "unique violation 23505": _wrapped(asyncpg.exceptions.UniqueViolationError("dup")),
    "undefined table 42P01": _wrapped(asyncpg.exceptions.UndefinedTableError("no table")),
    "deadlock 40P01 (a lost race: 409)": _wrapped(
        asyncpg.exceptions.DeadlockDetectedError("deadlock")
    ),
    "driver misuse": _wrapped(asyncpg.exceptions.InterfaceError("another operation")),
    "an OSError of the code's own": FileNotFoundError("/etc/territory.conf"),
    "a TimeoutError of the code's own": TimeoutError(),
    "a plain bug": KeyError("id"),
}


@pytest.mark.parametrize("error", list(UNAVAILABLE_ERRORS))
def test_a_lost_or_unreachable_database_is_told_by_its_error(error: str) -> None:
    assert database_unavailable(UNAVAILABLE_ERRORS[error])


@pytest.mark.parametrize("error", list(BUGS))
def test_other_failures_are_not_taken_for_a_lost_database(error: str) -> None:
    assert not database_unavailable(BUGS[error])


async def test_a_bug_inside_a_transaction_still_answers_500(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def broken(session: SessionDep, kind: str) -> None:
        async with transaction(session, resource="test"):
            await session.execute(text("SELECT 1"))
            if kind == "sql":
                await session.execute(text("SELECT * FROM no_such_table"))
            raise {"oserror": FileNotFoundError, "timeout": TimeoutError}[kind]()

    app.add_api_route("/broken", broken)
    for kind in ("sql", "oserror", "timeout"):
        assert_problem(await client.get("/broken", params={"kind": kind}), 500, "internal-error")


# --------------------------------------------------------------------------- no database at all

SOME_ID = "01a23785-ce9d-7980-aec6-728ef2e9cc06"
OPERATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/customers", {}),
    ("GET", f"/v1/customers/{SOME_ID}", {}),
    ("POST", "/v1/customers", {"json": customer("K1")}),
    ("POST", "/v1/customers", {"json": customer("K1"), "headers": {"Idempotency-Key": "k-1"}}),
    (
        "PATCH",
        f"/v1/customers/{SOME_ID}",
        {"json": {"name": "新名"}, "headers": {"If-Match": '"1"'}},
    ),
    ("DELETE", f"/v1/customers/{SOME_ID}", {}),
    ("POST", "/v1/customers/batch", {"json": {"items": [customer("K1"), customer("K2")]}}),
    # The short way through DirectRoute, and FastAPI's own handler (X-Act-As goes there).
    ("POST", "/v1/resolve", {"json": {"province": "上海"}}),
    ("POST", "/v1/resolve", {"json": {"province": "上海"}, "headers": {"X-Act-As": "zhang"}}),
    ("GET", "/v1/territories", {}),
    ("GET", "/v1/owners", {}),
    ("GET", "/v1/events", {}),
    ("GET", "/v1/audit", {}),
]

# How a server can refuse a connection, as a restart shows it (None: it hangs up at once).
REFUSALS = {
    "starting-up": STARTING_UP,
    "shutting-down": SHUTTING_DOWN,
    "too-many-connections": TOO_MANY_CLIENTS,
    "hangs-up": None,
}


@pytest.fixture(params=["nothing-listens", *REFUSALS])
async def unreachable_database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
    if request.param == "nothing-listens":
        yield url
        return
    server = FlakyPostgres(upstream=None)
    server.listen(refusal=REFUSALS[request.param])
    try:
        yield server.url(url)
    finally:
        await server.close()


async def test_every_operation_answers_503_while_the_database_cannot_be_reached(
    unreachable_database_url: str,
    declared_responses: DeclaredResponses,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="territory_service.access"):
        async with (
            serving(unreachable_database_url) as app,
            http_client(app, declared_responses, SOME_KEY) as client,
        ):
            for method, path, options in OPERATIONS:
                assert_unavailable(await client.request(method, path, **options))
            assert (await client.get("/readyz")).status_code == 503
    assert unhandled_errors(caplog) == []


async def test_a_malformed_idempotency_key_answers_503_while_the_database_cannot_be_reached(
    declared_responses: DeclaredResponses,
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
    async with serving(url) as app, http_client(app, declared_responses, SOME_KEY) as client:
        headers = {"Idempotency-Key": "k" * 300}
        response = await client.post("/v1/customers", json=customer("K1"), headers=headers)
    assert_unavailable(response)


# --------------------------------------------------------------------------- one step at a time

# Where the database goes away while a customer is created (its row, its ownership row and its
# first event, then COMMIT), and how.
STEPS = {
    "statement-sent-connection-cut": Trap(b"INSERT INTO ownership_events", Cut.SEVER),
    "statement-run-session-terminated": Trap(
        b"INSERT INTO ownership_events", Cut.TERMINATE, deliver=True
    ),
    "commit-sent-connection-cut": Trap(b"COMMIT", Cut.SEVER, after=b"INSERT INTO customers"),
    "commit-sent-session-terminated": Trap(
        b"COMMIT", Cut.TERMINATE, after=b"INSERT INTO customers"
    ),
    # The server committed; only the answer is lost. The client cannot tell this from the
    # others, so it is a 503 too, and the retry finds the customer.
    "committed-answer-lost": Trap(
        b"COMMIT", Cut.SEVER, deliver=True, after=b"INSERT INTO customers"
    ),
}


@pytest.mark.postgresql
@pytest.mark.parametrize("step", list(STEPS))
async def test_a_write_that_loses_the_database_at_any_step_answers_503_and_is_all_or_nothing(
    step: str,
    flaky_postgres: FlakyPostgres,
    fresh_postgres_url: str,
    declared_responses: DeclaredResponses,
    caplog: pytest.LogCaptureFixture,
) -> None:
    trap = STEPS[step]
    key = await issue_admin_key(fresh_postgres_url)
    with caplog.at_level(logging.ERROR, logger="territory_service.access"):
        async with (
            serving(flaky_postgres.url(fresh_postgres_url)) as app,
            http_client(app, declared_responses, key) as client,
        ):
            await activate_rules(client)
            flaky_postgres.trap = trap
            lost = await client.post("/v1/customers", json=customer("K1"))
            assert flaky_postgres.sprung.is_set()
            assert_unavailable(lost)
            assert_unavailable(await client.get("/v1/customers"))  # it is still down
            committed = await stored_customers(fresh_postgres_url)
            flaky_postgres.come_back()
            retry = await client.post("/v1/customers", json=customer("K1"))
    assert unhandled_errors(caplog) == []
    if trap.deliver and trap.statement == b"COMMIT":
        assert set(committed) == {"K1"}
        assert retry.status_code == 409, retry.text
        assert retry.json()["existing_id"] == str(committed["K1"].id)
    else:
        assert committed == {}
        assert retry.status_code == 201, retry.text
    stored = await stored_customers(fresh_postgres_url)
    assert set(stored) == {"K1"}
    assert half_written(stored) == []


# --------------------------------------------------------------------------- a restart under load

WORKERS = 8
WARM_UP = 40  # successful answers before the restart begins
PER_PHASE = 3 * WORKERS  # answers while it shuts down, while it is down, while it starts up
RECOVERED = 2 * WORKERS  # successful answers once it is back...
RECOVERY_ANSWERS = 50 * WORKERS  # ...within this many answers


@dataclass
class Load:
    """Requests of every kind from `WORKERS` clients at once, and what each answered."""

    answers: list[tuple[str, str, httpx.Response]] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # external id -> customer id
    attempted: set[str] = field(default_factory=set)
    phase: str = "up"
    stopping: bool = False
    failure: BaseException | None = None  # a client that failed: the test stops with it
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def run(self, client: httpx.AsyncClient, worker: int) -> None:
        try:
            await self._run(client, worker)
        except Exception as exc:
            async with self.changed:
                self.failure = exc
                self.changed.notify_all()
            raise

    async def _run(self, client: httpx.AsyncClient, worker: int) -> None:
        kinds: list[Callable[[httpx.AsyncClient, str], Any]] = [
            self.create,
            self.list,
            self.batch,
            self.get_one,
            self.resolve,
        ]
        for turn in itertools.count():
            if self.stopping:
                return
            kind = kinds[(worker + turn) % len(kinds)]
            phase = self.phase
            response = await kind(client, f"W{worker}T{turn}")
            async with self.changed:
                self.answers.append((phase, kind.__name__, response))
                self.changed.notify_all()

    async def create(self, client: httpx.AsyncClient, tag: str) -> httpx.Response:
        self.attempted.add(tag)
        # Every other one with an Idempotency-Key, which takes a transaction of its own first.
        headers = {"Idempotency-Key": tag} if len(self.attempted) % 2 else {}
        response = await client.post("/v1/customers", json=customer(tag), headers=headers)
        if response.status_code == 201:
            self.acknowledged[tag] = response.json()["id"]
        return response

    async def batch(self, client: httpx.AsyncClient, tag: str) -> httpx.Response:
        tags = [f"{tag}-{n}" for n in range(3)]
        self.attempted.update(tags)
        response = await client.post(
            "/v1/customers/batch", json={"items": [customer(t) for t in tags]}
        )
        if response.status_code == 200:
            for item in response.json()["items"]:
                assert item["status"] == "created", item
                self.acknowledged[tags[item["index"]]] = item["id"]
        return response

    async def list(self, client: httpx.AsyncClient, _tag: str) -> httpx.Response:
        return await client.get("/v1/customers", params={"limit": 20})

    async def get_one(self, client: httpx.AsyncClient, tag: str) -> httpx.Response:
        if not self.acknowledged:
            return await self.list(client, tag)
        return await client.get(f"/v1/customers/{next(iter(self.acknowledged.values()))}")

    async def resolve(self, client: httpx.AsyncClient, _tag: str) -> httpx.Response:
        return await client.post("/v1/resolve", json={"province": "上海"})

    def count(self, *, phase: str | None = None, success: bool | None = None) -> int:
        return sum(
            1
            for answered_in, _, response in self.answers
            if (phase is None or answered_in == phase)
            and (success is None or response.is_success == success)
        )

    async def until(self, done: Callable[[], bool]) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.failure is not None or done())
        if self.failure is not None:
            raise self.failure

    async def enter(self, phase: str) -> None:
        """Start `phase` and wait for `PER_PHASE` answers to requests sent in it."""
        self.phase = phase
        await self.until(lambda: self.count(phase=phase) >= PER_PHASE)


@pytest.mark.postgresql
async def test_a_restart_under_load_answers_only_successes_and_503s_and_leaves_nothing_half_written(
    flaky_postgres: FlakyPostgres,
    fresh_postgres_url: str,
    declared_responses: DeclaredResponses,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = await issue_admin_key(fresh_postgres_url)
    load = Load()
    with caplog.at_level(logging.ERROR, logger="territory_service.access"):
        async with (
            serving(flaky_postgres.url(fresh_postgres_url)) as app,
            http_client(app, declared_responses, key) as client,
        ):
            await activate_rules(client)
            workers = [asyncio.create_task(load.run(client, n)) for n in range(WORKERS)]
            try:
                await load.until(lambda: load.count(success=True) >= WARM_UP)
                await flaky_postgres.restart_begins()  # with statements in flight
                await load.enter("shutting down")
                flaky_postgres.go_down()
                await load.enter("down")
                flaky_postgres.listen(refusal=STARTING_UP)
                await load.enter("starting up")
                flaky_postgres.come_back()
                load.phase = "back"
                await load.until(
                    lambda: (
                        load.count(phase="back", success=True) >= RECOVERED
                        or load.count(phase="back") >= RECOVERY_ANSWERS
                    )
                )
            finally:
                load.stopping = True
                await asyncio.gather(*workers)

    wrong = [
        f"{phase}: {kind} {response.status_code} {response.text}"
        for phase, kind, response in load.answers
        if not response.is_success
        and not (
            response.status_code == 503
            and response.json().get("type") == UNAVAILABLE
            and "retry-after" in response.headers
        )
    ]
    assert wrong == []
    assert unhandled_errors(caplog) == []
    # Every phase of the restart was met (a request is counted in the phase it was sent in).
    for phase in ("shutting down", "down", "starting up"):
        assert load.count(phase=phase, success=False) > 0, phase
    assert load.count(phase="back", success=True) >= RECOVERED

    stored = await stored_customers(fresh_postgres_url)
    assert half_written(stored) == []
    assert set(stored) <= load.attempted
    assert {tag: str(stored[tag].id) for tag in load.acknowledged if tag in stored} == (
        load.acknowledged
    )
