"""Idempotency-Key: a retry with the same key and body replays the first answer, exactly once.

Some tests add small operations of their own to the app (under `/test/`): one that waits until
the test lets it finish, to hold a key in flight, and one that fails, to see the key given back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import socket
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.audit.models import AuditEntry
from territory_service.config import Settings
from territory_service.customers.models import Customer
from territory_service.db import utcnow
from territory_service.errors import ConcurrentUpdate
from territory_service.idempotency.models import IdempotencyRecord
from territory_service.main import create_app
from territory_service.security.scopes import Scope
from territory_service.territories.models import Territory
from tests.api.helpers import assert_problem, customer_body
from tests.conftest import KeyMaker, http_client
from tests.openapi_conformance import DeclaredResponses

_keys = itertools.count(1)


def new_key() -> str:
    return f"retry-{next(_keys)}"


def with_key(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def count(engine: AsyncEngine, model: type[Any]) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(model))).scalar_one())


class Operations:
    """Test operations whose runs can be counted, held back and made to fail."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        # Runs of `held` (by number) that wait until the test opens their gate.
        self.held = {1}
        self.started: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.gates: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.failures_left = 0

    def install(self, app: FastAPI) -> None:
        @app.post("/test/held", status_code=201)
        async def held() -> dict[str, int]:
            self.calls["held"] += 1
            call = self.calls["held"]
            if call in self.held:
                self.started[call].set()
                await self.gates[call].wait()
            return {"call": call}

        @app.post("/test/flaky", status_code=201)
        async def flaky(outcome: str) -> Any:
            self.calls["flaky"] += 1
            if self.failures_left:
                self.failures_left -= 1
                if outcome == "raise":
                    raise RuntimeError("the operation failed")
                if outcome == "lost-race":  # what a deadlock or a lost compare-and-set becomes
                    raise ConcurrentUpdate("resource")
                return JSONResponse({"detail": "unavailable"}, status_code=503)
            return {"call": self.calls["flaky"]}

        app.openapi_schema = None  # the document, and so the middleware, sees them


@pytest.fixture
def operations(app: FastAPI) -> Operations:
    operations = Operations()
    operations.install(app)
    return operations


async def wait_for(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll until `condition()` holds; a condition that never does fails the test."""
    async with asyncio.timeout(30):
        while not await condition():
            await asyncio.sleep(0.01)


async def key_record(engine: AsyncEngine, key: str) -> IdempotencyRecord | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(IdempotencyRecord.__table__).where(IdempotencyRecord.key == key)
            )
        ).one_or_none()
    return None if row is None else IdempotencyRecord(**row._mapping)


async def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = customer_body()
    key = new_key()

    first = await client.post("/v1/customers", json=body, headers=with_key(key))
    retry = await client.post("/v1/customers", json=body, headers=with_key(key))

    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    for header in ("content-type", "location", "etag"):
        assert retry.headers[header] == first.headers[header]
    assert retry.headers["x-request-id"] != first.headers["x-request-id"]
    assert await count(engine, Customer) == 1


async def test_the_same_key_with_another_body_is_422_and_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = new_key()
    first = await client.post("/v1/customers", json=customer_body(), headers=with_key(key))
    assert first.status_code == 201, first.text

    other = await client.post("/v1/customers", json=customer_body(), headers=with_key(key))
    elsewhere = await client.post(
        "/v1/owners", json={"external_id": "o", "name": "王"}, headers=with_key(key)
    )

    problem = assert_problem(other, 422, "idempotency-key-reused")
    assert problem["errors"][0]["parameter"] == "Idempotency-Key"
    assert_problem(elsewhere, 422, "idempotency-key-reused")
    assert await count(engine, Customer) == 1
    assert (await client.get("/v1/owners")).json()["items"] == []


async def test_concurrent_requests_with_one_key_run_the_operation_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = customer_body()
    key = new_key()

    responses = await asyncio.gather(
        *(client.post("/v1/customers", json=body, headers=with_key(key)) for _ in range(20))
    )

    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {201, 409}, statuses
    ran = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    assert len(ran) == 1, statuses
    assert {r.content for r in responses if r.status_code == 201} == {ran[0].content}
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency-key-in-flight")
    assert await count(engine, Customer) == 1


@pytest.fixture
async def served(app: FastAPI, settings: Settings) -> AsyncIterator[str]:
    """The service run by uvicorn in worker processes of its own, on the test database."""
    del app  # needed for emptying the tables afterwards
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "territory_service.main:create_app"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", "4", "--log-level", "warning"],
        env=os.environ | {"DATABASE_URL": settings.database_url, "LOG_LEVEL": "WARNING"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as probe_client, asyncio.timeout(60):
            while True:
                assert server.poll() is None, "the server exited"
                try:
                    if (await probe_client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


async def test_worker_processes_racing_on_one_key_run_the_operation_once(
    served: str, make_key: KeyMaker, engine: AsyncEngine
) -> None:
    # Territory names need not be unique, so nothing but the key stops a second territory.
    body = {"name": "竞争区域"}
    headers = {"Authorization": f"Bearer {await make_key(Scope.ADMIN)}"} | with_key(new_key())
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=served, limits=limits, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/territories", json=body, headers=headers) for _ in range(40))
        )

    statuses = Counter(response.status_code for response in responses)
    ran = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    assert len(ran) == 1, statuses
    for response in responses:
        if response.status_code == 201:
            assert response.content == ran[0].content
        else:
            assert_problem(response, 409, "idempotency-key-in-flight")
    assert await count(engine, Territory) == 1


async def test_while_the_first_request_runs_retries_get_409_then_its_answer(
    client: httpx.AsyncClient, operations: Operations
) -> None:
    key = new_key()
    first = asyncio.create_task(client.post("/test/held", json={}, headers=with_key(key)))
    await operations.started[1].wait()

    retries = await asyncio.gather(
        *(client.post("/test/held", json={}, headers=with_key(key)) for _ in range(19))
    )
    operations.gates[1].set()
    answered = await first
    replayed = await client.post("/test/held", json={}, headers=with_key(key))

    for retry in retries:
        problem = assert_problem(retry, 409, "idempotency-key-in-flight")
        assert "Idempotency-Key" in problem["detail"]
        assert retry.headers["retry-after"] == "1"
    assert (answered.status_code, answered.json()) == (201, {"call": 1})
    assert (replayed.status_code, replayed.json()) == (201, {"call": 1})
    assert replayed.headers["idempotent-replayed"] == "true"
    assert operations.calls["held"] == 1


async def test_a_4xx_answer_is_replayed_too(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    body = customer_body()
    existing = (await client.post("/v1/customers", json=body)).json()
    key = new_key()
    refused = await client.post("/v1/customers", json=body, headers=with_key(key))
    assert_problem(refused, 409, "already-exists")
    deleted = await client.delete(f"/v1/customers/{existing['id']}")
    assert deleted.status_code == 204, deleted.text

    retry = await client.post("/v1/customers", json=body, headers=with_key(key))

    assert retry.status_code == 409
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == refused.content
    assert await count(engine, Customer) == 0


EXPECTED_FAILURE = {"raise": 500, "answer-503": 503, "lost-race": 409}


@pytest.mark.parametrize("outcome", list(EXPECTED_FAILURE))
async def test_a_request_that_fails_or_loses_a_race_gives_its_key_back(
    client: httpx.AsyncClient, operations: Operations, outcome: str
) -> None:
    operations.failures_left = 1
    key = new_key()
    path = f"/test/flaky?outcome={outcome}"

    failed = await client.post(path, json={}, headers=with_key(key))
    retried = await client.post(path, json={}, headers=with_key(key))
    replayed = await client.post(path, json={}, headers=with_key(key))

    assert failed.status_code == EXPECTED_FAILURE[outcome]
    assert (retried.status_code, retried.json()) == (201, {"call": 2})
    assert "idempotent-replayed" not in retried.headers
    assert (replayed.status_code, replayed.json()) == (201, {"call": 2})
    assert replayed.headers["idempotent-replayed"] == "true"
    assert operations.calls["flaky"] == 2


async def test_keys_belong_to_the_api_key_that_sent_them(
    app: FastAPI,
    declared_responses: DeclaredResponses,
    make_key: KeyMaker,
    engine: AsyncEngine,
) -> None:
    key = new_key()
    answers = []
    for _ in range(2):
        async with http_client(app, declared_responses, await make_key(Scope.ADMIN)) as caller:
            answers.append(
                await caller.post("/v1/customers", json=customer_body(), headers=with_key(key))
            )

    assert [answer.status_code for answer in answers] == [201, 201]
    assert all("idempotent-replayed" not in answer.headers for answer in answers)
    assert await count(engine, Customer) == 2


async def test_an_expired_key_is_forgotten_and_purged(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key, other_key = new_key(), new_key()
    first = await client.post("/v1/customers", json=customer_body(), headers=with_key(key))
    assert first.status_code == 201, first.text
    retention = dt.timedelta(hours=Settings().idempotency_ttl_hours)
    async with engine.begin() as connection:
        await connection.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key)
            .values(
                created_at=utcnow() - retention - dt.timedelta(hours=1),
                expires_at=utcnow() - dt.timedelta(hours=1),
            )
        )

    purging = await client.post("/v1/customers", json=customer_body(), headers=with_key(other_key))
    assert purging.status_code == 201, purging.text
    assert await key_record(engine, key) is None
    reused = await client.post("/v1/customers", json=customer_body(), headers=with_key(key))

    assert reused.status_code == 201, reused.text
    assert "idempotent-replayed" not in reused.headers
    assert await count(engine, Customer) == 3


async def test_new_keys_are_kept_for_the_retention_period(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = new_key()
    await client.post("/v1/customers", json=customer_body(), headers=with_key(key))

    record = await key_record(engine, key)

    assert record is not None
    assert record.expires_at - record.created_at == dt.timedelta(hours=24)


def test_keys_are_kept_at_least_24_hours() -> None:
    with pytest.raises(ValueError, match="idempotency_ttl_hours"):
        Settings(idempotency_ttl_hours=23)


async def test_a_lapsed_lease_is_taken_over_and_the_late_answer_is_not_kept(
    client: httpx.AsyncClient, operations: Operations, engine: AsyncEngine
) -> None:
    operations.held = {1, 2}
    key = new_key()

    async def post() -> httpx.Response:
        return await client.post("/test/held", json={}, headers=with_key(key))

    first = asyncio.create_task(post())
    await operations.started[1].wait()
    async with engine.begin() as connection:  # as if the process running it had died
        await connection.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key)
            .values(lease_until=utcnow() - dt.timedelta(seconds=1))
        )
    takeover = asyncio.create_task(post())
    await operations.started[2].wait()
    operations.gates[1].set()
    late = await first
    while_the_takeover_runs = await post()
    operations.gates[2].set()
    taken_over = await takeover
    replayed = await post()

    assert (late.status_code, late.json()) == (201, {"call": 1})
    assert_problem(while_the_takeover_runs, 409, "idempotency-key-in-flight")
    assert (taken_over.status_code, taken_over.json()) == (201, {"call": 2})
    assert (replayed.status_code, replayed.json()) == (201, {"call": 2})
    assert replayed.headers["idempotent-replayed"] == "true"


@pytest.fixture
async def short_lease_client(
    app: FastAPI, settings: Settings, engine: AsyncEngine, make_key: KeyMaker
) -> AsyncIterator[tuple[httpx.AsyncClient, Operations]]:
    """A second app on the same database whose requests hold their keys for 0.3 s at a time."""
    del app  # needed for emptying the tables afterwards
    short = create_app(
        settings.model_copy(update={"idempotency_lease_seconds": 0.3}), engine=engine
    )
    operations = Operations()
    operations.install(short)
    async with short.router.lifespan_context(short):
        transport = httpx.ASGITransport(app=short, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://territory.test",
            headers={"Authorization": f"Bearer {await make_key(Scope.ADMIN)}"},
        ) as client:
            yield client, operations


async def test_a_running_request_keeps_renewing_its_lease(
    short_lease_client: tuple[httpx.AsyncClient, Operations], engine: AsyncEngine
) -> None:
    client, operations = short_lease_client
    key = new_key()
    first = asyncio.create_task(client.post("/test/held", json={}, headers=with_key(key)))
    await operations.started[1].wait()
    claimed = await key_record(engine, key)
    assert claimed is not None

    async def renewed_past_the_first_lease() -> bool:
        record = await key_record(engine, key)
        assert record is not None
        return utcnow() > claimed.lease_until and record.lease_until > claimed.lease_until

    await wait_for(renewed_past_the_first_lease)
    retry = await client.post("/test/held", json={}, headers=with_key(key))
    operations.gates[1].set()
    answered = await first

    assert_problem(retry, 409, "idempotency-key-in-flight")
    assert (answered.status_code, answered.json()) == (201, {"call": 1})
    assert operations.calls["held"] == 1


@pytest.mark.parametrize(
    "value",
    [b"", b"x" * 256, "ключ".encode(), b"tab\tkey"],
    ids=["empty", "too-long", "not-ascii", "control-character"],
)
async def test_a_malformed_key_is_400_and_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, value: bytes
) -> None:
    response = await client.post(
        "/v1/customers", json=customer_body(), headers={b"Idempotency-Key": value}
    )

    problem = assert_problem(response, 400, "invalid-idempotency-key")
    assert problem["errors"][0] == {
        "parameter": "Idempotency-Key",
        "location": "header",
        "detail": problem["detail"],
    }
    assert await count(engine, Customer) == 0


async def test_a_key_sent_twice_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/customers",
        json=customer_body(),
        headers=[("Idempotency-Key", "one"), ("Idempotency-Key", "two")],
    )

    assert_problem(response, 400, "invalid-idempotency-key")


async def test_the_longest_key_is_accepted(client: httpx.AsyncClient) -> None:
    key = ("k ~" * 85)[:254] + "k"
    first = await client.post("/v1/customers", json=customer_body(), headers=with_key(key))
    assert first.status_code == 201, first.text


@pytest.mark.parametrize("value", ["retry-1", "not valid \t"])
async def test_without_a_usable_api_key_the_answer_is_401_and_nothing_is_kept(
    anonymous_client: httpx.AsyncClient, engine: AsyncEngine, value: str
) -> None:
    for authorization in (None, "Bearer tsk_" + "x" * 40):
        headers = {"Idempotency-Key": value}
        if authorization:
            headers["Authorization"] = authorization
        response = await anonymous_client.post(
            "/v1/customers", json=customer_body(), headers=headers
        )
        assert_problem(response, 401, "unauthenticated")
    assert await count(engine, IdempotencyRecord) == 0


async def test_operations_that_keep_no_answer_ignore_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = new_key()
    facts = {"name": "预览有限公司", "province": "上海"}
    new_api_key = {"name": "n", "scopes": ["owners:read"]}

    previews = [await client.post("/v1/resolve", json=facts, headers=with_key(key)) for _ in "ab"]
    issued = [
        await client.post("/v1/api-keys", json=new_api_key, headers=with_key(key)) for _ in "ab"
    ]

    assert all("idempotent-replayed" not in r.headers for r in previews + issued)
    assert [r.status_code for r in issued] == [201, 201]
    assert issued[0].json()["id"] != issued[1].json()["id"]
    assert await count(engine, IdempotencyRecord) == 0


async def test_a_replay_is_not_audited_again(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = customer_body()
    key = new_key()
    await client.post("/v1/customers", json=body, headers=with_key(key))
    audited = await count(engine, AuditEntry)

    await client.post("/v1/customers", json=body, headers=with_key(key))

    assert await count(engine, AuditEntry) == audited


async def test_a_large_batch_is_replayed(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    body = {"items": [customer_body() for _ in range(1000)]}
    key = new_key()

    first = await client.post("/v1/customers/batch", json=body, headers=with_key(key))
    retry = await client.post("/v1/customers/batch", json=body, headers=with_key(key))

    assert first.status_code == 200, first.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    assert await count(engine, Customer) == 1000


def test_every_post_that_changes_something_declares_the_key(
    declared_responses: DeclaredResponses,
) -> None:
    paths = declared_responses.document["paths"]
    declaring = set()
    for path, operations in paths.items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "header"}
            if "Idempotency-Key" in names:
                assert method == "post", path
                assert {"400", "409", "422"} <= set(operation["responses"]), path
                declaring.add(operation["operationId"])
    posts = {op["operationId"] for ops in paths.values() for m, op in ops.items() if m == "post"}

    assert posts - declaring == {"resolve_customer", "validate_ruleset", "create_api_key"}
