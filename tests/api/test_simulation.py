"""Simulating a rule set: who would move, the load before and after, the conflicts it would
raise; nothing changes, and activating the same rule set then moves exactly those customers."""

from __future__ import annotations

from typing import Any

import httpx

from territory_service.jobs import service as jobs
from tests.api.helpers import (
    activate,
    add_rule,
    assert_problem,
    create_customer,
    list_all,
    where,
)


async def simulate(client: httpx.AsyncClient, ruleset: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/v1/rulesets/{ruleset['id']}/simulate")
    assert response.status_code == 202, response.text
    await jobs.wait_for_all()
    job: dict[str, Any] = (await client.get(response.headers["location"])).json()
    assert job["status"] == "succeeded", job
    assert job["kind"] == "simulation"
    return job


async def redivision(client: httpx.AsyncClient, regions: dict[str, Any]) -> dict[str, Any]:
    """A draft that hands 江苏 from 华东 to 华南 and leaves 广东 uncovered."""
    response = await client.post(
        "/v1/rulesets", json={"name": "2028", "default_territory_id": regions["country"]["id"]}
    )
    draft: dict[str, Any] = response.json()
    await add_rule(
        client,
        draft,
        name="华东",
        priority=10,
        condition=where("province", "eq", "上海"),
        territory_id=regions["east"]["id"],
    )
    await add_rule(
        client,
        draft,
        name="华南",
        priority=10,
        condition=where("province", "eq", "江苏"),
        territory_id=regions["south"]["id"],
    )
    return draft


async def ownerships(client: httpx.AsyncClient) -> dict[str, tuple[str, str | None]]:
    return {
        c["id"]: (c["ownership"]["territory_id"], c["ownership"]["owner_id"])
        for c in await list_all(client, "/v1/customers")
    }


async def test_simulation_reports_the_moves_that_activation_then_makes(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    for province in ["上海"] * 3 + ["江苏"] * 4 + ["广东"] * 2:
        await create_customer(client, province=province)
    await activate(client, regions["ruleset"])
    draft = await redivision(client, regions)
    before = await ownerships(client)
    events_before = len(await list_all(client, "/v1/conflicts"))

    job = await simulate(client, draft)

    result = job["result"]
    assert (result["customers"], result["moves"], result["territory_changes"]) == (9, 6, 6)
    territories = {t["territory_id"]: t for t in result["load"]["territories"]}
    east = territories[regions["east"]["id"]]
    assert (east["before"], east["after"]) == (7, 3)
    assert territories[regions["south"]["id"]]["change"] == 4 - 2
    assert territories[regions["country"]["id"]]["after"] == 2  # 广东 no longer covered
    owners = {o["owner_id"]: o for o in result["load"]["owners"]}
    assert owners[regions["wang"]["id"]]["after"] == 4
    assert sum(o["after"] for o in owners.values()) == 7
    assert {c["kind"]: c["customers"] for c in result["conflicts"]} == {"no_match": 2}
    assert await ownerships(client) == before  # nothing changed
    assert len(await list_all(client, "/v1/conflicts")) == events_before

    moves = await list_all(client, f"/v1/simulations/{job['id']}/moves", limit=2)
    south = await list_all(
        client, f"/v1/simulations/{job['id']}/moves", territory_id=regions["south"]["id"]
    )
    assert len(moves) == 6
    assert len(south) == 4 + 2  # into 华南 (江苏) and out of it (广东)

    await activate(client, draft)

    after = await ownerships(client)
    moved = {c for c in before if before[c] != after[c]}
    assert moved == {m["customer_id"] for m in moves}
    assert all(after[m["customer_id"]] == (m["territory_id"], m["owner_id"]) for m in moves)


async def test_simulating_needs_an_existing_rule_set_and_moves_need_a_simulation(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    missing = "00000000-0000-7000-8000-000000000000"
    assert_problem(await client.post(f"/v1/rulesets/{missing}/simulate"), 404, "not-found")
    activation = await activate(client, regions["ruleset"])
    response = await client.get(f"/v1/simulations/{activation['id']}/moves")
    assert_problem(response, 404, "not-found")


async def test_simulations_run_side_by_side(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    await create_customer(client, province="江苏")
    first = await client.post(f"/v1/rulesets/{regions['ruleset']['id']}/simulate")
    second = await client.post(f"/v1/rulesets/{regions['ruleset']['id']}/simulate")
    assert (first.status_code, second.status_code) == (202, 202)
    await jobs.wait_for_all()
    for response in (first, second):
        job = (await client.get(response.headers["location"])).json()
        assert (job["status"], job["result"]["moves"]) == ("succeeded", 1)
