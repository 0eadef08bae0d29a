"""A transfer approval whose database connection is killed half-way leaves all of the change or
none of it, and the retry with the same Idempotency-Key completes it.

The test holds back the approval in the middle of writing: its own open transaction has
inserted the history row (customer, version) that the approval is about to write for the
transfer's last customer, so the approval's insert waits on it after the earlier rows are
written. The test then kills the approval's backend with pg_terminate_backend, as a failover or
a crashed connection would, and lets its own transaction roll back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.api.helpers import where
from tests.concurrency.invariants import ownership_violations
from tests.concurrency.servers import issue_admin_key, running_servers
from tests.postgres_server import to_asyncpg_dsn

pytestmark = pytest.mark.postgresql

CUSTOMERS = 300
KEY = "k1"
WAIT_SECONDS = 30.0


async def post(client: httpx.AsyncClient, path: str, **body: Any) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.is_success, f"POST {path}: {response.status_code} {response.text}"
    result: dict[str, Any] = response.json()
    return result | {"location": response.headers.get("location")}


async def wait_for_job(client: httpx.AsyncClient, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        job: dict[str, Any] = (await client.get(location)).json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


async def east_customers_of_one_owner(client: httpx.AsyncClient) -> dict[str, Any]:
    """CUSTOMERS customers in 华东, all with 张; 王 is a member of 华南 only."""
    country = await post(client, "/v1/territories", name="全国")
    east = await post(client, "/v1/territories", name="华东", parent_id=country["id"])
    south = await post(client, "/v1/territories", name="华南", parent_id=country["id"])
    zhang = await post(client, "/v1/owners", external_id="zhang", name="张")
    wang = await post(client, "/v1/owners", external_id="wang", name="王")
    for territory, owner in ((east, zhang), (south, wang)):
        path = f"/v1/territories/{territory['id']}/members/{owner['id']}"
        added = await client.put(path, json={})
        assert added.is_success, added.text
    ruleset = await post(client, "/v1/rulesets", name="2027", default_territory_id=country["id"])
    await post(
        client,
        f"/v1/rulesets/{ruleset['id']}/rules",
        name="华东",
        priority=10,
        condition=where("province", "eq", "上海"),
        territory_id=east["id"],
    )
    activation = await post(client, f"/v1/rulesets/{ruleset['id']}/activate")
    assert (await wait_for_job(client, activation["location"]))["status"] == "succeeded"
    items = [
        {"source": "crm", "external_id": f"K{n:04d}", "name": f"断线客户{n}", "province": "上海"}
        for n in range(CUSTOMERS)
    ]
    batch = await post(client, "/v1/customers/batch", items=items)
    assert batch["created"] == CUSTOMERS, batch
    return {
        "customer_ids": [item["id"] for item in batch["items"]],
        "zhang": zhang["id"],
        "wang": wang["id"],
        "south": south["id"],
        "east": east["id"],
    }


async def blocked_by(watcher: Any, blocker_pid: int) -> tuple[int, bool, set[str]]:
    """The backend waiting on the blocker: its pid, whether it has written (holds a
    transaction id), and the tables it holds write locks on."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        row = await watcher.fetchrow(
            "SELECT pid, backend_xid IS NOT NULL AS wrote FROM pg_stat_activity "
            "WHERE $1 = ANY(pg_blocking_pids(pid))",
            blocker_pid,
        )
        if row is not None:
            tables = await watcher.fetch(
                "SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = $1 AND l.mode = 'RowExclusiveLock'",
                row["pid"],
            )
            return row["pid"], row["wrote"], {t["relname"] for t in tables}
        await asyncio.sleep(0.02)
    raise AssertionError("the approval never reached the held-back write")


async def database_state(dsn: str, transfer_id: str, customer_ids: list[str]) -> dict[str, Any]:
    """The transfer's status, the changes its customers went through since they were created
    (how many, by which requests) and where they are now."""
    connection = await asyncpg.connect(dsn)
    try:
        ids = [uuid.UUID(c) for c in customer_ids]
        changes = await connection.fetchrow(
            "SELECT count(*) AS count, array_agg(DISTINCT request_id) AS requests "
            "FROM ownership_events WHERE customer_id = ANY($1) AND version > 1",
            ids,
        )
        places = await connection.fetch(
            "SELECT territory_id::text, owner_id::text, source::text, version::text "
            "FROM ownerships WHERE customer_id = ANY($1)",
            ids,
        )
        return {
            "transfer": await connection.fetchval(
                "SELECT status FROM transfers WHERE id = $1", uuid.UUID(transfer_id)
            ),
            "events": changes["count"],
            "requests": set(changes["requests"] or ()),
            "places": {tuple(place) for place in places},
        }
    finally:
        await connection.close()


async def history_violations(url: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await ownership_violations(connection)
    finally:
        await engine.dispose()


async def test_a_killed_approval_changes_nothing_and_its_retry_with_the_same_key_applies_all(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    dsn = to_asyncpg_dsn(fresh_postgres_url)
    key = await issue_admin_key(fresh_postgres_url)
    async with (
        running_servers(fresh_postgres_url, 1, tmp_path) as (server,),
        httpx.AsyncClient(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(60.0),
        ) as client,
    ):
        world = await east_customers_of_one_owner(client)
        transfer = await post(
            client,
            "/v1/transfers",
            customer_ids=world["customer_ids"],
            to_owner_id=world["wang"],
            to_territory_id=world["south"],
            reason="华东客户整体转给华南王",
        )
        last = max(transfer["items"], key=lambda item: item["customer_id"])
        approve = f"/v1/transfers/{transfer['id']}/approve"

        blocker, watcher = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
        approval: asyncio.Task[httpx.Response] | None = None
        try:
            held = blocker.transaction()
            await held.start()
            await blocker.execute(
                "INSERT INTO ownership_events (customer_id, version, territory_id, source, locked, "
                "created_at) VALUES ($1, $2, $3, 'transfer', true, now())",
                uuid.UUID(last["customer_id"]),
                last["expected_version"] + 1,
                uuid.UUID(world["south"]),
            )
            approval = asyncio.create_task(
                client.post(approve, json={"note": "同意"}, headers={"Idempotency-Key": KEY})
            )
            pid, wrote, written_tables = await blocked_by(watcher, blocker.get_server_pid())
            killed = await watcher.fetchval("SELECT pg_terminate_backend($1)", pid)
            answer = await approval
            await held.rollback()
        finally:
            await blocker.close()
            await watcher.close()
            if approval is not None:  # released by the blocker's end, whatever went wrong
                await asyncio.wait([approval], timeout=WAIT_SECONDS)
        log = server.log_tail()

        assert killed, "the approval's backend could not be terminated"
        # Held back mid-write: it has a transaction id and has written ownership rows and
        # history rows of the customers before the last.
        assert wrote, "the approval was held back before it wrote anything"
        assert {"ownerships", "ownership_events"} <= written_tables, written_tables
        assert answer.status_code == 503 or 400 <= answer.status_code < 500, (
            f"{answer.status_code} {answer.text}\n{log}"
        )
        if answer.status_code == 503:
            assert answer.json()["type"] == "urn:territory-service:problem:database-unavailable"
        after_kill = await database_state(dsn, transfer["id"], world["customer_ids"])
        untouched = {(world["east"], world["zhang"], "rule", "1")}
        nothing = {"transfer": "pending", "events": 0, "requests": set(), "places": untouched}
        assert after_kill == nothing, (
            f"a killed approval left part or all of its change: {after_kill}"
        )
        assert await history_violations(fresh_postgres_url) == []

        retried = await client.post(
            approve, json={"note": "同意"}, headers={"Idempotency-Key": KEY}
        )
        replayed = await client.post(
            approve, json={"note": "同意"}, headers={"Idempotency-Key": KEY}
        )

    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers
    body = retried.json()
    assert (body["status"], body["failed_count"]) == ("applied", 0), body
    assert [item["status"] for item in body["items"]] == ["applied"] * CUSTOMERS
    assert await database_state(dsn, transfer["id"], world["customer_ids"]) == {
        "transfer": "applied",
        "events": CUSTOMERS,
        "requests": {retried.headers["x-request-id"]},
        "places": {(world["south"], world["wang"], "transfer", "2")},
    }
    assert await history_violations(fresh_postgres_url) == []
    assert replayed.status_code == 200, replayed.text
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json() == body
