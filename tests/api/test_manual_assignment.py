"""Manual assignment locks ownership; unlocking hands it back to the rules. Both need the
ownership version they are based on (If-Match), and racing writers never both win."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.api.helpers import (
    activate,
    assert_problem,
    create_customer,
    create_owner,
    list_all,
)


async def ownership(client: httpx.AsyncClient, customer: dict[str, Any]) -> httpx.Response:
    return await client.get(f"/v1/customers/{customer['id']}/ownership")


async def assign(
    client: httpx.AsyncClient, customer: dict[str, Any], etag: str | None, **body: Any
) -> httpx.Response:
    headers = {} if etag is None else {"If-Match": etag}
    return await client.put(
        f"/v1/customers/{customer['id']}/ownership",
        json={"reason": "key account handed to 王"} | body,
        headers=headers,
    )


async def test_manual_assignment_needs_the_version_it_is_based_on_and_locks(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    customer = await create_customer(client, province="上海")
    etag = (await ownership(client, customer)).headers["etag"]
    wang, south = regions["wang"], regions["south"]

    missing = await assign(client, customer, None, owner_id=wang["id"], territory_id=south["id"])
    stale = await assign(client, customer, '"99"', owner_id=wang["id"], territory_id=south["id"])
    done = await assign(client, customer, etag, owner_id=wang["id"], territory_id=south["id"])

    assert_problem(missing, 428, "precondition-required")
    assert_problem(stale, 412, "stale-version")
    assert done.status_code == 200, done.text
    assert done.headers["etag"] == '"2"'
    body = done.json()
    assert (body["territory_id"], body["owner_id"], body["source"], body["locked"]) == (
        south["id"],
        wang["id"],
        "manual",
        True,
    )
    history = (await client.get(f"/v1/customers/{customer['id']}/history")).json()["items"]
    assert [(e["version"], e["source"], e["locked"]) for e in history] == [
        (1, "rule", False),
        (2, "manual", True),
    ]
    assert history[1]["reason"] == "key account handed to 王"
    assert history[1]["actor_key_id"] is not None

    again = await activate(client, regions["ruleset"])  # the rules disagree; the lock holds
    assert again["result"]["changed"] == 0
    assert (await ownership(client, customer)).json()["owner_id"] == wang["id"]
    drift = await list_all(client, "/v1/conflicts", kind="locked_drift")
    assert [c["customer_ids"] for c in drift] == [[customer["id"]]]


async def test_unlocking_resolves_at_once(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    customer = await create_customer(client, province="广东")
    etag = (await ownership(client, customer)).headers["etag"]
    locked = await assign(client, customer, etag, territory_id=regions["country"]["id"])
    assert (locked.json()["territory_id"], locked.json()["owner_id"]) == (
        regions["country"]["id"],
        None,
    )
    url = f"/v1/customers/{customer['id']}/ownership/unlock"

    assert_problem(await client.post(url), 428, "precondition-required")
    unlocked = await client.post(url, headers={"If-Match": locked.headers["etag"]})

    assert unlocked.status_code == 200, unlocked.text
    body = unlocked.json()
    assert (body["territory_id"], body["owner_id"], body["locked"], body["source"]) == (
        regions["south"]["id"],
        regions["wang"]["id"],
        False,
        "rule",
    )
    again = await client.post(url, headers={"If-Match": unlocked.headers["etag"]})
    assert_problem(again, 409, "conflict")
    history = (await client.get(f"/v1/customers/{customer['id']}/history")).json()["items"]
    assert [e["version"] for e in history] == [1, 2, 3]


async def test_only_active_members_of_the_territory_can_be_assigned(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    customer = await create_customer(client, province="上海")
    etag = (await ownership(client, customer)).headers["etag"]
    stranger = await create_owner(client)
    inactive = await create_owner(client, active=False)
    await client.put(f"/v1/territories/{regions['east']['id']}/members/{inactive['id']}", json={})
    missing = "00000000-0000-7000-8000-000000000001"

    for body, status, slug in (
        ({"owner_id": stranger["id"]}, 422, "owner-not-assignable"),
        ({"owner_id": inactive["id"]}, 422, "owner-not-assignable"),
        ({"owner_id": missing}, 422, "invalid-reference"),
        ({"territory_id": missing}, 422, "invalid-reference"),
        ({}, 422, "validation-error"),
    ):
        assert_problem(await assign(client, customer, etag, **body), status, slug)
    assert (await ownership(client, customer)).json()["version"] == 1


async def test_racing_assignments_with_one_version_let_exactly_one_win(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    customer = await create_customer(client, province="上海")
    etag = (await ownership(client, customer)).headers["etag"]
    owners = sorted(regions["owners"])

    responses = await asyncio.gather(
        *(assign(client, customer, etag, owner_id=owners[n % 2]) for n in range(20))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 409, 412}
    history = (await client.get(f"/v1/customers/{customer['id']}/history")).json()["items"]
    assert [e["version"] for e in history] == [1, 2]
