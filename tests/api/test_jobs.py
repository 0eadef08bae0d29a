"""Jobs an operator can manage: listed and filtered, shown running only while a replica holds a
live lease on them, and cancelled between pieces with the job saying what it left undone."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from territory_service.conflicts.recorder import record_signals
from territory_service.db import utcnow
from territory_service.errors import DatabaseUnavailable
from territory_service.jobs.models import Job, JobPiece
from territory_service.jobs.worker import Piece, Worker
from territory_service.rulesets import activation
from tests.api.helpers import (
    activate,
    add_rule,
    assert_problem,
    create,
    create_customer,
    create_owner,
    create_territory,
    list_all,
    ownership,
    stop_workers,
    where,
)

PROVINCES = ("上海", "江苏", "广东", "上海", "江苏", "广东")


async def stepped_worker(app: FastAPI) -> Worker:
    """Stop the app's own worker and give the test one that takes a piece when told to, with
    pieces of one customer."""
    await stop_workers(app)
    one_by_one = app.state.settings.model_copy(update={"activation_piece_customers": 1})
    return Worker(app.state.session_factory, one_by_one, holder="test:0:stepper")


async def test_a_job_is_running_only_while_a_lease_on_it_is_live(
    client: httpx.AsyncClient, app: FastAPI, regions: dict[str, Any]
) -> None:
    await stepped_worker(app)
    started = await client.post(f"/v1/rulesets/{regions['ruleset']['id']}/activate")
    location = started.headers["location"]
    job_id = uuid.UUID(started.json()["id"])

    async def lease_until(expires_at: dt.datetime) -> dict[str, Any]:
        async with app.state.session_factory() as session, session.begin():
            await session.execute(
                update(JobPiece)
                .where(JobPiece.job_id == job_id)
                .values(lease_holder="elsewhere:1:a", lease_expires_at=expires_at)
            )
        shown: dict[str, Any] = (await client.get(location)).json()
        return shown

    held = await lease_until(utcnow() + dt.timedelta(minutes=1))
    lapsed = await lease_until(utcnow() - dt.timedelta(seconds=1))

    assert (held["status"], [lease["holder"] for lease in held["leases"]]) == (
        "running",
        ["elsewhere:1:a"],
    )
    assert (lapsed["status"], lapsed["leases"]) == ("queued", [])
    running = await list_all(client, "/v1/jobs", status="running")
    queued = await list_all(client, "/v1/jobs", status="queued", kind="activation")
    assert (running, [job["id"] for job in queued]) == ([], [str(job_id)])


async def test_a_cancelled_activation_says_which_customers_still_wait_for_it(
    client: httpx.AsyncClient, app: FastAPI, regions: dict[str, Any]
) -> None:
    worker = await stepped_worker(app)
    customers = sorted(
        [(await create_customer(client, province=p))["id"] for p in PROVINCES], key=uuid.UUID
    )
    started = await client.post(f"/v1/rulesets/{regions['ruleset']['id']}/activate")
    assert await worker.run_one()  # the plan: one piece per customer
    assert await worker.run_one()  # the first customer's piece

    cancelled = await client.post(f"{started.headers['location']}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    job = cancelled.json()
    assert (job["status"], job["done"], job["total"]) == ("cancelled", 1, len(customers))
    assert job["result"]["waiting"] == len(customers) - 1
    waiting = [r["first_customer_id"] for r in job["result"]["waiting_ranges"]]
    assert waiting == [r["last_customer_id"] for r in job["result"]["waiting_ranges"]]
    assert waiting == customers[1:]
    assert not await worker.run_one()  # nothing of a cancelled job is taken up again
    placed = [(await client.get(f"/v1/customers/{c}/ownership")).status_code for c in customers]
    assert placed == [200] + [404] * (len(customers) - 1)  # the rest wait for any owner
    again = await client.post(f"{started.headers['location']}/cancel")
    assert_problem(again, 409, "job-finished")


async def test_a_dated_activation_starts_on_time_and_can_be_cancelled_before(
    client: httpx.AsyncClient, app: FastAPI, regions: dict[str, Any]
) -> None:
    worker = await stepped_worker(app)
    customer = (await create_customer(client, province="上海"))["id"]
    ruleset_path = f"/v1/rulesets/{regions['ruleset']['id']}"
    in_an_hour = (utcnow() + dt.timedelta(hours=1)).isoformat()

    started = await client.post(f"{ruleset_path}/activate", params={"effective_at": in_an_hour})

    assert started.status_code == 202, started.text
    assert (started.json()["status"], started.json()["run_at"]) == ("queued", in_an_hour[:26] + "Z")
    scheduled = (await client.get(ruleset_path)).json()
    assert (scheduled["state"], scheduled["scheduled_for"]) == (
        "scheduled",
        started.json()["run_at"],
    )
    assert not await worker.run_one()  # not yet
    edit = await client.patch(ruleset_path, json={"name": "改"}, headers={"If-Match": '"1"'})
    assert edit.status_code == 409, edit.text  # a scheduled rule set is as fixed as an active one
    second = await client.post(f"{ruleset_path}/activate")
    assert_problem(second, 409, "activation-running")

    cancelled = await client.post(f"{started.headers['location']}/cancel")

    assert cancelled.json()["status"] == "cancelled", cancelled.text
    draft = (await client.get(ruleset_path)).json()
    assert (draft["state"], draft["scheduled_for"]) == ("draft", None)
    assert (await client.get(f"/v1/customers/{customer}/ownership")).status_code == 404

    again = await client.post(f"{ruleset_path}/activate", params={"effective_at": in_an_hour})
    async with app.state.session_factory() as session, session.begin():  # the hour has passed
        job_id = uuid.UUID(again.json()["id"])
        await session.execute(
            update(Job).where(Job.id == job_id).values(run_at=utcnow() - dt.timedelta(seconds=1))
        )
    while await worker.run_one():
        pass

    job = (await client.get(again.headers["location"])).json()
    assert (job["status"], job["done"], job["total"]) == ("succeeded", 1, 1)
    assert (await client.get(ruleset_path)).json()["state"] == "active"
    assert (await ownership(client, customer))["territory_id"] == regions["east"]["id"]


async def test_an_activation_dated_in_the_past_or_without_an_offset_is_refused(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    path = f"/v1/rulesets/{regions['ruleset']['id']}/activate"
    past = (utcnow() - dt.timedelta(minutes=1)).isoformat()

    passed = await client.post(path, params={"effective_at": past})
    naive = await client.post(path, params={"effective_at": "2030-01-01T00:00:00"})

    problem = assert_problem(passed, 422, "effective-at-passed")
    assert problem["errors"][0]["parameter"] == "effective_at"
    assert naive.status_code == 422, naive.text
    assert (await client.get(f"/v1/rulesets/{regions['ruleset']['id']}")).json()["state"] == "draft"
    assert await list_all(client, "/v1/jobs") == []


async def test_a_plan_made_again_decides_as_the_first_whatever_was_applied_meanwhile(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two customers, one piece each. The first attempt at planning stores both pieces and
    dies before it is done; meanwhile another worker applies the second piece. The plan made
    again must see the second customer where it was, not where it went: otherwise the first
    customer, placed by least load, would count the second's move before its time and go to
    the other member."""
    root = await create_territory(client)
    team = await create_territory(client, parent_id=root["id"], strategy="least_loaded")
    w, x = await create_owner(client), await create_owner(client)
    for owner in (w, x):
        await client.put(f"/v1/territories/{team['id']}/members/{owner['id']}", json={})
    first = await create_customer(client, province="广东")  # sorts first: ids grow with time
    second = await create_customer(client, province="上海")

    async def ruleset(name: str, shanghai_to: dict[str, Any], *, guangdong: bool) -> Any:
        made = await create(
            client, "/v1/rulesets", {"name": name, "default_territory_id": root["id"]}
        )
        rules = [("上海", shanghai_to["id"])] + ([("广东", None)] if guangdong else [])
        for n, (province, owner_id) in enumerate(rules, start=1):
            await add_rule(
                client,
                made,
                name=province,
                priority=n,
                condition=where("province", "eq", province),
                territory_id=team["id"],
                owner_id=owner_id,
            )
        return made

    await activate(client, await ruleset("前", w, guangdong=False))
    after = await ruleset("后", x, guangdong=True)
    worker = await stepped_worker(app)
    dies = [DatabaseUnavailable()]

    async def record_or_die(*args: Any, **kwargs: Any) -> None:
        if dies:
            raise dies.pop()
        await record_signals(*args, **kwargs)

    monkeypatch.setattr(activation, "record_signals", record_or_die)
    started = await client.post(f"/v1/rulesets/{after['id']}/activate")
    assert await worker.run_one()  # the first attempt: both pieces stored, then it dies
    job_id = uuid.UUID(started.json()["id"])
    await apply_out_of_turn(app, worker, job_id, number=2)
    assert (await ownership(client, second["id"]))["owner_id"] == x["id"]
    while await worker.run_one():
        pass

    job = (await client.get(started.headers["location"])).json()
    assert (job["status"], job["done"], job["total"]) == ("succeeded", 2, 2)
    # In the uninterrupted order the first customer saw w holding the second: x was less loaded.
    assert (await ownership(client, first["id"]))["owner_id"] == x["id"]


async def apply_out_of_turn(app: FastAPI, worker: Worker, job_id: uuid.UUID, number: int) -> None:
    """Apply piece `number` as another worker would, before the pieces queued ahead of it."""
    async with app.state.session_factory() as session, session.begin():
        piece = await session.get(JobPiece, (job_id, number))
        job = await session.get(Job, job_id)
        assert piece is not None
        assert job is not None
        piece.lease_holder = "other:2:b"
        piece.lease_expires_at = utcnow() + dt.timedelta(minutes=1)
        step = Piece(job_id, number, piece.step, dict(piece.payload), 1, job.kind,
                     dict(job.params), job.subject_id, "other:2:b", app.state.session_factory,
                     worker.settings)  # fmt: skip
    await activation.apply(step)
