"""The public pool (公海): rules inherited down the territory tree, claims that cannot be
overrun by concurrency, release, cooldown, and reclaim after too long without follow-up."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI

from territory_service.db import utcnow
from territory_service.jobs import service as jobs
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_owner,
    create_territory,
    list_all,
    ownership,
    pooled,
    stop_workers,
)


async def put_rules(client: httpx.AsyncClient, territory: dict[str, Any], **rules: Any) -> Any:
    response = await client.put(f"/v1/territories/{territory['id']}/pool-rules", json=rules)
    assert response.status_code == 200, response.text
    return response.json()


async def claim(client: httpx.AsyncClient, customer_id: str, owner_id: str) -> httpx.Response:
    return await client.post(f"/v1/customers/{customer_id}/claim", json={"owner_id": owner_id})


async def test_pool_rules_are_inherited_unless_a_territory_sets_its_own(
    client: httpx.AsyncClient,
) -> None:
    country = await create_territory(client, name="全国")
    east = await create_territory(client, name="华东", parent_id=country["id"])
    shanghai = await create_territory(client, name="上海", parent_id=east["id"])

    await put_rules(client, country, holding_limit=20, reclaim_enabled=True, reclaim_after_days=30)
    own = await put_rules(client, east, holding_limit=5, reclaim_after_days_by_tier={"A": 90})
    stale = await client.put(
        f"/v1/territories/{east['id']}/pool-rules", json={}, headers={"If-Match": '"9"'}
    )
    effective = (await client.get(f"/v1/territories/{shanghai['id']}/pool-rules")).json()

    assert own["own"]["holding_limit"] == 5
    assert own["own"]["reclaim_after_days"] is None
    assert_problem(stale, 412, "stale-version")
    assert effective["version"] == 0
    assert effective["effective"] | {} == {
        "holding_limit": 5,
        "daily_claim_limit": None,
        "cooldown_days": None,
        "reclaim_enabled": True,
        "reclaim_after_days": 30,
        "reclaim_after_days_by_tier": {"A": 90},
        "exempt_tags": None,
        "reminder_days": None,
    }
    bad = await client.put(f"/v1/territories/{east['id']}/pool-rules", json={"cooldown_days": 0})
    assert assert_problem(bad, 422, "validation-error")["errors"][0]["pointer"] == "#/cooldown_days"


async def test_claim_release_and_the_cooldown(
    client: httpx.AsyncClient, pool: dict[str, Any]
) -> None:
    await put_rules(client, pool["country"], cooldown_days=7)
    (customer,) = await pooled(client, 1)
    first, second, _ = pool["reps"]

    claimed = await claim(client, customer, first)
    again = await claim(client, customer, second)
    released = await client.post(
        f"/v1/customers/{customer}/release", json={"reason": "无意向", "owner_id": first}
    )
    too_soon = await claim(client, customer, first)
    other = await claim(client, customer, second)

    assert claimed.status_code == 200, claimed.text
    assert (claimed.json()["owner_id"], claimed.json()["source"], claimed.json()["locked"]) == (
        first,
        "claim",
        True,
    )
    assert_problem(again, 409, "customer-taken")
    assert released.status_code == 200, released.text
    assert (released.json()["owner_id"], released.json()["source"]) == (None, "release")
    assert assert_problem(too_soon, 409, "claim-cooldown")["retry_at"]
    assert other.status_code == 200, other.text
    history = (await client.get(f"/v1/customers/{customer}/history")).json()["items"]
    assert [(e["source"], e["owner_id"]) for e in history] == [
        ("rule", None),
        ("claim", first),
        ("release", None),
        ("claim", second),
    ]
    listed = await list_all(client, f"/v1/territories/{pool['country']['id']}/pool")
    assert customer not in {c["id"] for c in listed}


async def test_claims_are_checked(client: httpx.AsyncClient, pool: dict[str, Any]) -> None:
    (customer,) = await pooled(client, 1)
    owned = await create_customer(client, province="上海")
    outsider = await create_owner(client)

    not_member = await claim(client, customer, outsider["id"])
    not_pooled = await claim(client, owned["id"], pool["reps"][0])
    nobody = await client.post(f"/v1/customers/{customer}/claim")

    assert_problem(not_member, 422, "owner-not-assignable")
    assert_problem(not_pooled, 409, "not-in-pool")
    assert_problem(nobody, 422, "claimant-required")
    assert (await ownership(client, customer))["version"] == 1


async def test_concurrent_claims_of_one_customer_let_exactly_one_win(
    client: httpx.AsyncClient, pool: dict[str, Any], backend: str
) -> None:
    claimants = 200 if backend == "postgresql" else 30
    owners = [await create_owner(client) for _ in range(claimants)]
    for owner in owners:
        await client.put(f"/v1/territories/{pool['country']['id']}/members/{owner['id']}", json={})
    (customer,) = await pooled(client, 1)

    responses = await asyncio.gather(*(claim(client, customer, o["id"]) for o in owners))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: claimants - 1}, statuses
    assert {r.json()["type"] for r in responses if r.status_code == 409} == {
        "urn:territory-service:problem:customer-taken"
    }
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert (await ownership(client, customer))["owner_id"] == winner["owner_id"]
    races = await list_all(client, "/v1/conflicts", kind="claim_race")
    assert len(races) == 1
    assert races[0]["customer_ids"] == [customer]
    assert races[0]["occurrences"] == claimants - 1


async def test_a_holding_limit_holds_under_concurrent_claims(
    client: httpx.AsyncClient, pool: dict[str, Any]
) -> None:
    await put_rules(client, pool["country"], holding_limit=5)
    customers = await pooled(client, 20)
    rep = pool["reps"][0]

    responses = await asyncio.gather(*(claim(client, c, rep) for c in customers))

    assert Counter(r.status_code for r in responses) == {200: 5, 409: 15}
    limited = [r.json() for r in responses if r.status_code == 409]
    assert {(p["type"].rsplit(":", 1)[1], p["limit"]) for p in limited} == {
        ("pool-limit-reached", "holding_limit")
    }
    held = await list_all(client, "/v1/customers", owner_id=rep)
    assert len(held) == 5


async def test_the_daily_claim_limit_counts_releases_too(
    client: httpx.AsyncClient, pool: dict[str, Any]
) -> None:
    await put_rules(client, pool["country"], daily_claim_limit=2)
    customers = await pooled(client, 3)
    rep = pool["reps"][0]
    batch = await client.post("/v1/pool/claims", json={"customer_ids": customers, "owner_id": rep})
    assert batch.status_code == 200, batch.text
    results = batch.json()["items"]
    assert [r["status"] for r in results] == [200, 200, 409]
    assert results[2]["problem"]["limit"] == "daily_claim_limit"
    await client.post(
        f"/v1/customers/{customers[0]}/release", json={"reason": "换一个", "owner_id": rep}
    )
    assert_problem(await claim(client, customers[2], rep), 409, "pool-limit-reached")


async def set_clock(app: FastAPI, days: float) -> dt.datetime:
    moved = utcnow() + dt.timedelta(days=days)
    app.state.clock = lambda: moved
    return moved


async def run_reclaim(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/v1/pool/reclaim")
    assert response.status_code == 202, response.text
    await jobs.wait_for_all()
    job: dict[str, Any] = (await client.get(response.headers["location"])).json()
    assert job["status"] == "succeeded", job
    return job


async def test_reclaim_takes_back_exactly_the_idle_customers(
    client: httpx.AsyncClient, pool: dict[str, Any], app: FastAPI
) -> None:
    east = pool["east"]
    await put_rules(
        client,
        pool["country"],
        reclaim_enabled=True,
        reclaim_after_days=30,
        reclaim_after_days_by_tier={"A": 90},
        exempt_tags=["open-deal"],
        reminder_days=5,
        cooldown_days=10,
    )
    plain = [(await create_customer(client, province="上海", tier="C"))["id"] for _ in range(3)]
    key_account = (await create_customer(client, province="上海", tier="A"))["id"]
    exempt = (await create_customer(client, province="江苏", tags=["open-deal"]))["id"]
    followed = (await create_customer(client, province="江苏"))["id"]
    before = {c: await ownership(client, c) for c in [*plain, key_account, exempt, followed]}

    await set_clock(app, 27)
    due = await list_all(client, "/v1/pool/due")
    assert {d["customer_id"] for d in due} == {*plain, followed}
    assert all(d["territory_id"] == east["id"] for d in due)
    await client.post(f"/v1/customers/{followed}/activity", json={"at": utcnow().isoformat()})
    in_a_month = await set_clock(app, 31)
    await client.post(
        f"/v1/customers/{followed}/activity",
        json={"at": (in_a_month - dt.timedelta(days=2)).isoformat()},
    )

    first = await run_reclaim(client)
    second = await run_reclaim(client)  # runs never overlap; one after the other finds none

    assert (first["result"]["reclaimed"], second["result"]["reclaimed"]) == (len(plain), 0)
    for customer_id in plain:
        now = await ownership(client, customer_id)
        assert (now["owner_id"], now["source"], now["locked"]) == (None, "reclaim", True)
        history = (await client.get(f"/v1/customers/{customer_id}/history")).json()["items"]
        assert [e["source"] for e in history] == ["rule", "reclaim"]
        assert history[-1]["reason"] == "no follow-up for 30 days"
    for customer_id in (key_account, exempt, followed):
        assert (await ownership(client, customer_id))["version"] == before[customer_id]["version"]
    app.state.clock = utcnow  # right after the reclaim, its owner wants the customer back
    previous = before[plain[0]]["owner_id"]
    await client.put(f"/v1/territories/{pool['country']['id']}/members/{previous}", json={})
    assert_problem(await claim(client, plain[0], previous), 409, "claim-cooldown")


async def test_moving_a_customer_between_owners_does_not_restart_its_clock(
    client: httpx.AsyncClient, pool: dict[str, Any], app: FastAPI
) -> None:
    await put_rules(client, pool["country"], reclaim_enabled=True, reclaim_after_days=30)
    customer = (await create_customer(client, province="上海"))["id"]
    holder = (await ownership(client, customer))["owner_id"]
    heir = next(iter(pool["owners"] - {holder}))
    await set_clock(app, 20)
    transfer = (
        await client.post(
            "/v1/transfers",
            json={"customer_ids": [customer], "to_owner_id": heir, "reason": "调整"},
        )
    ).json()
    await client.post(f"/v1/transfers/{transfer['id']}/approve")
    await client.put(
        f"/v1/territories/{pool['country']['id']}/pool-rules", json={"reclaim_after_days": 30}
    )  # switched off (reclaim_enabled unset) ...
    await set_clock(app, 31)
    assert (await run_reclaim(client))["result"]["reclaimed"] == 0
    await put_rules(client, pool["country"], reclaim_enabled=True, reclaim_after_days=30)

    job = await run_reclaim(client)  # ... and on again: the dates were kept

    assert job["result"]["reclaimed"] == 1
    assert (await ownership(client, customer))["source"] == "reclaim"


async def test_a_manual_reclaim_does_not_overlap_a_running_one(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await stop_workers(app)  # the first run stays queued while the second is asked for
    first = await client.post("/v1/pool/reclaim")
    second = await client.post("/v1/pool/reclaim")

    assert first.status_code == 202, first.text
    problem = assert_problem(second, 409, "reclaim-running")
    assert problem["job_id"] == first.json()["id"]


async def test_bad_follow_up_dates_and_cursors_are_refused(client: httpx.AsyncClient) -> None:
    customer = (await create_customer(client, province="上海"))["id"]
    integer_cursor = base64.urlsafe_b64encode(b'{"after": 7}').decode().rstrip("=")

    ancient = await client.post(
        f"/v1/customers/{customer}/activity", json={"at": "0001-01-01T00:00:00+01:00"}
    )
    future = await client.post(
        f"/v1/customers/{customer}/activity",
        json={"at": (utcnow() + dt.timedelta(days=1)).isoformat()},
    )
    cursor = await client.get("/v1/pool/due", params={"cursor": integer_cursor})

    assert assert_problem(ancient, 422, "validation-error")["errors"][0]["pointer"] == "#/at"
    assert_problem(future, 422, "activity-in-future")
    assert_problem(cursor, 422, "invalid-cursor")
