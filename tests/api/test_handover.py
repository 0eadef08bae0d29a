"""Hand-over: everything a leaving owner holds goes elsewhere as a job; afterwards they can be
deactivated, and no path gives them a customer again."""

from __future__ import annotations

from typing import Any

import httpx

from territory_service.jobs import service as jobs
from tests.api.helpers import (
    CATCH_ALL,
    activate,
    add_rule,
    assert_problem,
    create_customer,
    create_owner,
    create_territory,
    list_all,
)


async def hand_over(client: httpx.AsyncClient, owner_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"/v1/owners/{owner_id}/handover", json={"reason": "离职交接"} | body
    )
    assert response.status_code == 202, response.text
    await jobs.wait_for_all()
    job: dict[str, Any] = (await client.get(response.headers["location"])).json()
    assert job["status"] == "succeeded", job
    return job


async def owners_of(client: httpx.AsyncClient, ids: list[str]) -> list[str | None]:
    return [(await client.get(f"/v1/customers/{i}/ownership")).json()["owner_id"] for i in ids]


async def test_hand_over_to_a_named_owner_then_deactivate(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await activate(client, regions["ruleset"])
    ids = [(await create_customer(client, province="上海"))["id"] for _ in range(6)]
    owners = await owners_of(client, ids)
    leaving = owners[0]  # round robin hashes random ids: whoever got the first customer leaves
    assert leaving is not None
    (staying,) = regions["owners"] - {leaving}
    held = [i for i, o in zip(ids, owners, strict=True) if o == leaving]
    etag = (await client.get(f"/v1/customers/{held[0]}/ownership")).headers["etag"]
    locked = await client.put(
        f"/v1/customers/{held[0]}/ownership",
        json={"reason": "key account", "owner_id": leaving},
        headers={"If-Match": etag},
    )
    assert locked.status_code == 200, locked.text
    early = await client.patch(f"/v1/owners/{leaving}", json={"active": False})
    assert_problem(early, 409, "still-referenced")

    job = await hand_over(client, leaving, to_owner_id=staying)

    assert job["kind"] == "handover"
    assert job["result"] == {"kind": "handover", "moved": len(held), "to_pool": 0}
    assert (job["total"], job["done"]) == (len(held), len(held))
    assert set(await owners_of(client, ids)) == {staying}
    kept = (await client.get(f"/v1/customers/{held[0]}/ownership")).json()
    assert (kept["source"], kept["locked"]) == ("transfer", True)
    history = (await client.get(f"/v1/customers/{held[-1]}/history")).json()["items"]
    assert [(e["from_owner_id"], e["owner_id"], e["source"]) for e in history][-1] == (
        leaving,
        staying,
        "transfer",
    )
    assert history[-1]["reason"] == "离职交接"

    deactivated = await client.patch(f"/v1/owners/{leaving}", json={"active": False})
    assert deactivated.status_code == 200, deactivated.text
    etag = (await client.get(f"/v1/customers/{ids[0]}/ownership")).headers["etag"]
    refused = await client.put(
        f"/v1/customers/{ids[0]}/ownership",
        json={"reason": "回来", "owner_id": leaving},
        headers={"If-Match": etag},
    )
    assert_problem(refused, 422, "owner-not-assignable")
    newcomers = [(await create_customer(client, province="江苏"))["id"] for _ in range(4)]
    assert set(await owners_of(client, newcomers)) == {staying}


async def test_without_a_target_each_territory_strategy_decides_or_the_pool_takes_them(
    client: httpx.AsyncClient,
) -> None:
    country = await create_territory(client, name="全国")
    east = await create_territory(client, name="华东", parent_id=country["id"])
    west = await create_territory(client, name="西部", parent_id=country["id"])
    leaving, a, b = [await create_owner(client) for _ in range(3)]
    for territory, owner in ((east, leaving), (east, a), (east, b), (west, leaving)):
        await client.put(f"/v1/territories/{territory['id']}/members/{owner['id']}", json={})
    ruleset = (
        await client.post(
            "/v1/rulesets", json={"name": "交接", "default_territory_id": country["id"]}
        )
    ).json()
    for territory, province in ((east, "上海"), (west, "四川")):
        await add_rule(
            client,
            ruleset,
            name=province,
            priority=10,
            condition={
                "any_of": [{"all_of": [{"field": "province", "op": "eq", "value": province}]}]
            },
            territory_id=territory["id"],
            owner_id=leaving["id"],
        )
    await add_rule(
        client, ruleset, name="其他", priority=99, condition=CATCH_ALL, territory_id=country["id"]
    )
    await activate(client, ruleset)
    # Enough that round robin (a hash of each customer's id) gives both members some:
    # with 6, one in 32 runs gave all to one.
    east_ids = [(await create_customer(client, province="上海"))["id"] for _ in range(16)]
    west_ids = [(await create_customer(client, province="四川"))["id"] for _ in range(2)]
    assert set(await owners_of(client, east_ids + west_ids)) == {leaving["id"]}

    job = await hand_over(client, leaving["id"])

    assert job["result"] == {"kind": "handover", "moved": 16, "to_pool": 2}
    spread = await owners_of(client, east_ids)
    assert set(spread) == {a["id"], b["id"]}  # round robin deals them out to both
    assert await owners_of(client, west_ids) == [None, None]
    gaps = await list_all(client, "/v1/conflicts", kind="no_capacity")
    assert [(c["territory_id"], sorted(c["customer_ids"])) for c in gaps] == [
        (west["id"], sorted(west_ids))
    ]


async def test_a_group_stays_together_through_a_hand_over(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    extra = await create_owner(client)
    await client.put(f"/v1/territories/{regions['east']['id']}/members/{extra['id']}", json={})
    await activate(client, regions["ruleset"])
    root = await create_customer(client, province="上海")
    children = [
        (await create_customer(client, province="江苏", parent_id=root["id"]))["id"]
        for _ in range(4)
    ]
    (leaving,) = await owners_of(client, [root["id"]])
    assert leaving is not None
    assert set(await owners_of(client, children)) == {leaving}

    job = await hand_over(client, leaving)

    assert job["status"] == "succeeded"
    (heir,) = await owners_of(client, [root["id"]])
    assert heir not in {leaving, None}
    assert set(await owners_of(client, children)) == {heir}
    assert await list_all(client, "/v1/conflicts", kind="group_split") == []


async def test_hand_over_requests_are_checked(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    leaving = next(iter(regions["owners"]))
    inactive = await create_owner(client, active=False)

    to_self = await client.post(
        f"/v1/owners/{leaving}/handover", json={"reason": "x", "to_owner_id": leaving}
    )
    to_inactive = await client.post(
        f"/v1/owners/{leaving}/handover", json={"reason": "x", "to_owner_id": inactive["id"]}
    )
    no_reason = await client.post(f"/v1/owners/{leaving}/handover", json={})

    assert_problem(to_self, 422, "handover-to-self")
    assert_problem(to_inactive, 422, "owner-not-assignable")
    assert_problem(no_reason, 422, "validation-error")
