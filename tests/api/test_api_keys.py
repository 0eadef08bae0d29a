"""API keys: issued once, stored hashed, revocable and expiring at once on every replica."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.api_keys.models import ApiKey
from territory_service.cli import main
from territory_service.config import Settings, get_settings
from territory_service.db import Base
from territory_service.main import create_app
from tests.api.helpers import answering_late, assert_problem, create_territory


async def issue(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    response = await client.post("/v1/api-keys", json={"name": "crm sync"} | body)
    assert response.status_code == 201, response.text
    issued: dict[str, object] = response.json()
    return issued


async def test_secret_is_shown_once_recognisable_and_works(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient
) -> None:
    issued = await issue(client, scopes=["customers:read"])
    secret = str(issued["secret"])

    assert secret.startswith("tsk_")
    assert len(secret) >= 40
    assert issued["display_prefix"] == secret[:12]
    listed = (await client.get("/v1/api-keys")).json()["items"]
    fetched = (await client.get(f"/v1/api-keys/{issued['id']}")).json()
    assert all("secret" not in key for key in listed)
    assert "secret" not in fetched
    assert secret not in str(listed) + str(fetched)
    used = await anonymous_client.get(
        "/v1/customers", headers={"Authorization": f"Bearer {secret}"}
    )
    assert used.status_code == 200


async def test_the_database_holds_only_a_hash_of_the_secret(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    secret = str((await issue(client, scopes=["customers:read"]))["secret"])

    async with engine.connect() as connection:
        dump = ""
        for table in Base.metadata.sorted_tables:
            dump += repr((await connection.execute(select(table))).all())
    assert secret not in dump
    assert secret[4:20] not in dump
    assert hashlib.sha256(secret.encode()).hexdigest() in dump


async def test_revoked_key_is_refused_on_the_next_request(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient
) -> None:
    issued = await issue(client, scopes=["customers:read"])
    headers = {"Authorization": f"Bearer {issued['secret']}"}
    assert (await anonymous_client.get("/v1/customers", headers=headers)).status_code == 200

    assert (await client.delete(f"/v1/api-keys/{issued['id']}")).status_code == 204

    refused = await anonymous_client.get("/v1/customers", headers=headers)
    assert "revoked" in assert_problem(refused, 401, "unauthenticated")["detail"]
    assert (await client.delete(f"/v1/api-keys/{issued['id']}")).status_code == 204
    assert (await client.get("/v1/api-keys")).json()["items"][-1]["id"] != issued["id"]
    with_revoked = (await client.get("/v1/api-keys", params={"include_revoked": True})).json()
    assert with_revoked["items"][-1]["revoked_at"] is not None


async def test_a_revocation_through_one_replica_holds_on_another_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    issued = await issue(client, scopes=["customers:read"])
    headers = {"Authorization": f"Bearer {issued['secret']}"}
    replica = create_fastapi_replica(engine, settings)
    async with replica.router.lifespan_context(replica), replica_client(replica) as other:
        assert (await other.get("/v1/customers", headers=headers)).status_code == 200
        await client.delete(f"/v1/api-keys/{issued['id']}")
        assert (await other.get("/v1/customers", headers=headers)).status_code == 401


async def test_a_revocation_holds_for_every_request_sent_after_it_while_others_are_in_flight(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """Keys are read in rounds that concurrent requests share; none may answer from a round
    that began before the revocation."""
    issued = await issue(client, scopes=["customers:read"])
    headers = {"Authorization": f"Bearer {issued['secret']}"}
    replica = create_fastapi_replica(engine, settings)
    revoked = asyncio.Event()
    answers: list[tuple[bool, int]] = []

    async def calls(other: httpx.AsyncClient, pause: float) -> None:
        while sum(after for after, _ in answers) < 40:
            await asyncio.sleep(pause)  # callers out of step: some ask while a round runs
            after = revoked.is_set()
            response = await other.get("/v1/customers", params={"limit": 1}, headers=headers)
            answers.append((after, response.status_code))

    async with replica.router.lifespan_context(replica), replica_client(replica) as other:
        replica.state.request_reads = answering_late(replica.state.request_reads, seconds=0.1)
        running = [asyncio.create_task(calls(other, n * 0.015)) for n in range(8)]
        while len(answers) < 8:
            await asyncio.sleep(0.01)
        assert (await client.delete(f"/v1/api-keys/{issued['id']}")).status_code == 204
        revoked.set()
        await asyncio.gather(*running)

    assert 200 in {status for after, status in answers if not after}
    assert {status for after, status in answers if after} == {401}
    assert replica.state.request_reads.rounds < len(answers)  # the rounds were shared


def create_fastapi_replica(engine: AsyncEngine, settings: Settings) -> FastAPI:
    return create_app(settings, engine=engine)


def replica_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://replica.test")


async def test_expired_key_is_refused(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    issued = await issue(client, scopes=["customers:read"], expires_at="2099-01-01T00:00:00Z")
    headers = {"Authorization": f"Bearer {issued['secret']}"}
    assert (await anonymous_client.get("/v1/customers", headers=headers)).status_code == 200
    async with engine.begin() as connection:
        await connection.execute(
            update(ApiKey)
            .where(ApiKey.id == _uuid(issued["id"]))
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )

    refused = await anonymous_client.get("/v1/customers", headers=headers)
    assert "expired" in assert_problem(refused, 401, "unauthenticated")["detail"]


def _uuid(value: object) -> uuid.UUID:
    return uuid.UUID(str(value))


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer tsk_unknownunknownunknownunknown", "Basic dXNlcjpwYXNz", "tsk_x"],
)
async def test_missing_or_unknown_credentials_are_401(
    anonymous_client: httpx.AsyncClient, authorization: str
) -> None:
    response = await anonymous_client.get(
        "/v1/customers", headers={"Authorization": authorization} if authorization else {}
    )
    assert_problem(response, 401, "unauthenticated")


async def test_last_used_at_is_recorded(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient
) -> None:
    issued = await issue(client, scopes=["customers:read"])
    assert issued["last_used_at"] is None
    await anonymous_client.get(
        "/v1/customers", headers={"Authorization": f"Bearer {issued['secret']}"}
    )
    fetched = (await client.get(f"/v1/api-keys/{issued['id']}")).json()
    assert fetched["last_used_at"] is not None


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"scopes": []}, "#/scopes"),
        ({"scopes": ["customers:delete"]}, "#/scopes/0"),
        ({"scopes": ["admin"], "territory_ids": ["01930000-0000-7000-8000-000000000000"]}, None),
        ({"scopes": ["customers:read"], "expires_at": "2020-01-01T00:00:00Z"}, "#/expires_at"),
        ({"scopes": ["customers:read"], "secret": "tsk_mine"}, "#/secret"),
    ],
)
async def test_invalid_key_requests_are_422(
    client: httpx.AsyncClient, body: dict[str, object], pointer: str | None
) -> None:
    response = await client.post("/v1/api-keys", json={"name": "k"} | body)
    assert response.status_code == 422, response.text
    if pointer is not None:
        assert pointer in [error["pointer"] for error in response.json()["errors"]]


async def test_confining_a_key_to_an_unknown_territory_is_refused(
    client: httpx.AsyncClient,
) -> None:
    known = await create_territory(client)
    response = await client.post(
        "/v1/api-keys",
        json={
            "name": "k",
            "scopes": ["customers:read"],
            "territory_ids": [known["id"], "01930000-0000-7000-8000-000000000000"],
        },
    )
    assert_problem(response, 422, "invalid-reference")


async def test_secrets_never_reach_the_logs(
    client: httpx.AsyncClient,
    anonymous_client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        issued = await issue(client, scopes=["customers:read"])
        secret = str(issued["secret"])
        await anonymous_client.get("/v1/customers", headers={"Authorization": f"Bearer {secret}"})
        await anonymous_client.get("/v1/owners", headers={"Authorization": f"Bearer {secret}"})
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert caplog.records
    assert secret not in logged


async def test_create_key_command_prints_a_working_key(
    engine: AsyncEngine,
    settings: Settings,
    anonymous_client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_info:
            await _run_cli(["create-key", "--name", "cli", "--scope", "customers:read"])
    finally:
        get_settings.cache_clear()
    assert exit_info.value.code == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    response = await anonymous_client.get(
        "/v1/customers", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200
    async with engine.connect() as connection:
        names = (await connection.execute(text("SELECT name FROM api_keys"))).scalars().all()
    assert "cli" in names


async def _run_cli(argv: list[str]) -> None:
    # The command runs its own event loop, as it does from a shell.
    await asyncio.to_thread(main, argv)
