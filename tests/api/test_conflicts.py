"""Conflicts: logged once per cause while open, listed and filtered, resolved (possibly with
an action: assign, merge) or dismissed."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from territory_service.conflicts.recorder import LISTED_CUSTOMERS, record_signals
from territory_service.engine.resolution import ConflictKind, ConflictSignal
from territory_service.security.scopes import Scope
from tests.api.helpers import (
    activate,
    assert_problem,
    create_customer,
    create_owner,
    create_territory,
    list_all,
)
from tests.conftest import KeyMaker, http_client
from tests.openapi_conformance import DeclaredResponses


async def record(app: FastAPI, *signals: ConflictSignal, ruleset_version: int | None = 1) -> None:
    async with app.state.session_factory() as session, session.begin():
        await record_signals(session, signals, ruleset_version=ruleset_version)


def tie(
    customer_id: uuid.UUID | None = None,
    *,
    rules: tuple[str, ...] = ("r1", "r2"),
    territory: dict[str, Any] | None = None,
) -> ConflictSignal:
    return ConflictSignal(
        ConflictKind.RULE_TIE,
        ("rules", *rules),
        customer_id or uuid.uuid4(),
        territory_id=uuid.UUID(territory["id"]) if territory else None,
        details={"priority": 10},
    )


def gap(customer_id: uuid.UUID | None = None, *, territory: dict[str, Any]) -> ConflictSignal:
    return ConflictSignal(
        ConflictKind.NO_MATCH,
        ("ruleset", "1"),
        customer_id or uuid.uuid4(),
        territory_id=uuid.UUID(territory["id"]),
    )


def moment(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


async def only_conflict(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    conflicts = await list_all(client, "/v1/conflicts", **params)
    assert len(conflicts) == 1, conflicts
    return conflicts[0]


async def test_a_new_cause_opens_a_conflict_with_its_signals(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    territory = await create_territory(client)
    first, second = uuid.uuid4(), uuid.uuid4()
    rule_id, owner_id = uuid.uuid4(), uuid.uuid4()
    signal = ConflictSignal(
        ConflictKind.RULE_TIE,
        ("rules", "a", "b"),
        first,
        territory_id=uuid.UUID(territory["id"]),
        rule_ids=(rule_id,),
        owner_ids=(owner_id,),
        details={"priority": 5, "tie_policy": "pool"},
    )
    again = ConflictSignal(ConflictKind.RULE_TIE, ("rules", "a", "b"), first)
    await record(app, signal, again, tie(second, rules=("a", "b")), ruleset_version=7)

    conflict = await only_conflict(client)
    assert conflict["kind"] == "rule_tie"
    assert conflict["status"] == "open"
    assert conflict["cause"] == "rule_tie:rules:a:b"
    assert conflict["territory_id"] == territory["id"]
    assert conflict["customer_ids"] == [str(first), str(second)]
    assert (conflict["customer_count"], conflict["occurrences"]) == (2, 3)
    assert conflict["rule_ids"] == [str(rule_id)]
    assert conflict["owner_ids"] == [str(owner_id)]
    assert conflict["details"] == {"priority": 5, "tie_policy": "pool"}
    assert (conflict["ruleset_version"], conflict["version"]) == (7, 1)
    assert conflict["last_seen_at"] == conflict["created_at"]
    assert conflict["closed_at"] is None


async def test_a_conflict_lists_its_first_hundred_customers_and_counts_all(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    customers = [uuid.uuid4() for _ in range(150)]
    await record(app, *(tie(customer) for customer in customers))

    conflict = await only_conflict(client)
    assert conflict["customer_ids"] == [str(c) for c in customers[:100]]
    assert (conflict["customer_count"], conflict["occurrences"]) == (150, 150)


async def test_every_customer_of_a_tie_finds_it_however_late_it_tied(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    customers = [uuid.uuid4() for _ in range(LISTED_CUSTOMERS + 50)]
    await record(app, tie(customers[0]))
    for start in range(1, len(customers), 30):  # later detections, as later chunks of a run
        await record(app, *(tie(customer) for customer in customers[start : start + 30]))
    await record(app, tie(customers[0]), tie(customers[-1]))  # seen again: counted once

    conflict = await only_conflict(client)
    assert conflict["customer_ids"] == [str(c) for c in customers[:LISTED_CUSTOMERS]]
    assert conflict["customer_count"] == len(customers)
    assert conflict["occurrences"] == len(customers) + 2
    for customer in customers:
        found = await list_all(client, "/v1/conflicts", customer_id=str(customer))
        assert [c["id"] for c in found] == [conflict["id"]], customer


@pytest.mark.parametrize("kind", list(ConflictKind))
async def test_a_customer_detected_later_finds_a_conflict_of_any_kind(
    client: httpx.AsyncClient, app: FastAPI, kind: ConflictKind
) -> None:
    first, later = uuid.uuid4(), uuid.uuid4()
    await record(app, ConflictSignal(kind, ("cause", "1"), first))

    await record(app, ConflictSignal(kind, ("cause", "1"), later))

    conflict = await only_conflict(client, customer_id=str(later))
    assert conflict["kind"] == kind.value
    assert conflict["customer_ids"] == [str(first), str(later)]
    assert conflict["customer_count"] == 2
    assert (await only_conflict(client, customer_id=str(first)))["id"] == conflict["id"]


async def test_a_repeated_cause_updates_the_open_conflict(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await record(app, tie(), tie())
    created = await only_conflict(client)

    await record(app, tie(), tie(), tie())

    updated = await only_conflict(client)
    assert updated["id"] == created["id"]
    assert (updated["occurrences"], updated["customer_count"]) == (5, 5)
    assert updated["version"] == 2
    assert moment(updated["last_seen_at"]) > moment(created["last_seen_at"])
    assert moment(updated["updated_at"]) > moment(created["updated_at"])
    assert updated["created_at"] == created["created_at"]


async def test_different_causes_are_different_conflicts(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    territory = await create_territory(client)
    await record(app, tie(rules=("a", "b")), tie(rules=("a", "c")), gap(territory=territory))

    conflicts = await list_all(client, "/v1/conflicts")
    assert sorted(c["cause"] for c in conflicts) == [
        "no_match:ruleset:1",
        "rule_tie:rules:a:b",
        "rule_tie:rules:a:c",
    ]


async def test_a_cause_longer_than_the_column_is_still_one_conflict(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    many_rules = tuple(str(uuid.uuid4()) for _ in range(20))
    await record(app, tie(rules=many_rules))
    await record(app, tie(rules=many_rules))

    conflict = await only_conflict(client)
    assert len(conflict["cause"]) == 400
    assert conflict["cause"].startswith(f"rule_tie:rules:{many_rules[0]}")
    assert conflict["occurrences"] == 2


async def test_after_resolving_the_same_cause_opens_a_new_conflict(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await record(app, tie())
    first = await only_conflict(client)
    resolved = await client.post(f"/v1/conflicts/{first['id']}/resolve", json={"note": "已处理"})
    assert resolved.status_code == 200, resolved.text

    await record(app, tie())

    reopened = await only_conflict(client, status="open")
    assert reopened["id"] != first["id"]
    assert (reopened["occurrences"], reopened["version"]) == (1, 1)
    closed = await only_conflict(client, status="resolved")
    assert (closed["id"], closed["occurrences"]) == (first["id"], 1)


async def test_concurrent_detections_of_one_cause_meet_on_one_row(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await asyncio.gather(*(record(app, tie(), tie()) for _ in range(10)))

    conflict = await only_conflict(client)
    assert (conflict["occurrences"], conflict["customer_count"]) == (20, 20)
    assert conflict["version"] == 10


async def test_filters_combine(client: httpx.AsyncClient, app: FastAPI) -> None:
    country = await create_territory(client, name="全国")
    east = await create_territory(client, name="华东", parent_id=country["id"])
    shanghai = await create_territory(client, name="上海", parent_id=east["id"])
    south = await create_territory(client, name="华南", parent_id=country["id"])
    customer = uuid.uuid4()
    await record(
        app,
        tie(customer, rules=("a", "b"), territory=shanghai),
        tie(rules=("c", "d"), territory=south),
        gap(customer, territory=east),
    )

    def causes(conflicts: list[dict[str, Any]]) -> list[str]:
        return sorted(c["cause"] for c in conflicts)

    assert causes(await list_all(client, "/v1/conflicts", kind="no_match")) == [
        "no_match:ruleset:1"
    ]
    assert causes(await list_all(client, "/v1/conflicts", territory_id=east["id"])) == [
        "no_match:ruleset:1",
        "rule_tie:rules:a:b",
    ]
    assert causes(await list_all(client, "/v1/conflicts", customer_id=str(customer))) == [
        "no_match:ruleset:1",
        "rule_tie:rules:a:b",
    ]
    both = await list_all(
        client,
        "/v1/conflicts",
        kind="rule_tie",
        territory_id=country["id"],
        customer_id=str(customer),
    )
    assert causes(both) == ["rule_tie:rules:a:b"]
    assert await list_all(client, "/v1/conflicts", status="dismissed") == []
    assert len(await list_all(client, "/v1/conflicts", status="open", limit=1)) == 3
    assert_problem(
        await client.get("/v1/conflicts", params={"kind": "nonsense"}), 422, "validation-error"
    )


async def test_resolve_closes_with_a_note_and_the_key(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await record(app, tie())
    conflict = await only_conflict(client)
    (admin_key,) = await list_all(client, "/v1/api-keys")

    response = await client.post(
        f"/v1/conflicts/{conflict['id']}/resolve",
        json={"note": "  已分配给张伟  "},
        headers={"If-Match": '"1"'},
    )

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    closed = response.json()
    assert closed["status"] == "resolved"
    assert closed["resolution_note"] == "已分配给张伟"
    assert closed["closed_at"] is not None
    assert closed["closed_by_key_id"] == admin_key["id"]
    fetched = await client.get(f"/v1/conflicts/{conflict['id']}")
    assert fetched.json() == closed
    assert fetched.headers["etag"] == '"2"'


async def test_dismiss_closes_with_a_note(client: httpx.AsyncClient, app: FastAPI) -> None:
    await record(app, tie())
    conflict = await only_conflict(client)

    response = await client.post(
        f"/v1/conflicts/{conflict['id']}/dismiss", json={"note": "规则重叠是有意的"}
    )

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["resolution_note"]) == (
        "dismissed",
        "规则重叠是有意的",
    )


@pytest.mark.parametrize("action", ["resolve", "dismiss"])
async def test_only_an_open_conflict_can_be_closed(
    client: httpx.AsyncClient, app: FastAPI, action: str
) -> None:
    await record(app, tie())
    conflict = await only_conflict(client)
    path = f"/v1/conflicts/{conflict['id']}"
    assert (await client.post(f"{path}/dismiss", json={"note": "第一次"})).status_code == 200

    problem = assert_problem(
        await client.post(f"{path}/{action}", json={"note": "第二次"}), 409, "conflict-not-open"
    )

    assert problem["conflict_status"] == "dismissed"
    assert (await client.get(path)).json()["resolution_note"] == "第一次"


async def test_closing_with_a_stale_if_match_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await record(app, tie())
    conflict = await only_conflict(client)
    await record(app, tie())  # detected again: version 2

    response = await client.post(
        f"/v1/conflicts/{conflict['id']}/resolve",
        json={"note": "看过了"},
        headers={"If-Match": '"1"'},
    )

    assert assert_problem(response, 412, "stale-version")["current_version"] == 2
    assert (await only_conflict(client))["status"] == "open"


async def test_closing_needs_a_note(client: httpx.AsyncClient, app: FastAPI) -> None:
    await record(app, tie())
    conflict = await only_conflict(client)
    path = f"/v1/conflicts/{conflict['id']}/resolve"

    for body in ({}, {"note": "   "}, {"note": "x" * 2001}, {"note": "ok", "status": "open"}):
        assert_problem(await client.post(path, json=body), 422, "validation-error")
    assert (await only_conflict(client))["status"] == "open"


async def test_unknown_conflict_is_404(client: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    assert_problem(await client.get(f"/v1/conflicts/{missing}"), 404, "not-found")
    response = await client.post(f"/v1/conflicts/{missing}/resolve", json={"note": "?"})
    assert_problem(response, 404, "not-found")


async def test_a_confined_key_sees_only_conflicts_in_its_territories(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_key: KeyMaker,
    declared_responses: DeclaredResponses,
) -> None:
    east = await create_territory(client, name="华东")
    shanghai = await create_territory(client, name="上海", parent_id=east["id"])
    south = await create_territory(client, name="华南")
    await record(
        app,
        tie(rules=("in", "east"), territory=shanghai),
        tie(rules=("in", "south"), territory=south),
        tie(rules=("no", "territory")),
    )
    by_cause = {c["cause"]: c for c in await list_all(client, "/v1/conflicts")}
    mine = by_cause["rule_tie:rules:in:east"]
    key = await make_key(
        Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE, territory_ids=[uuid.UUID(east["id"])]
    )

    async with http_client(app, declared_responses, key) as confined:
        listed = await list_all(confined, "/v1/conflicts")
        assert [c["id"] for c in listed] == [mine["id"]]
        assert await list_all(confined, "/v1/conflicts", territory_id=south["id"]) == []
        assert (await confined.get(f"/v1/conflicts/{mine['id']}")).status_code == 200
        for cause in ("rule_tie:rules:in:south", "rule_tie:rules:no:territory"):
            hidden = by_cause[cause]["id"]
            assert_problem(await confined.get(f"/v1/conflicts/{hidden}"), 404, "not-found")
            response = await confined.post(f"/v1/conflicts/{hidden}/dismiss", json={"note": "x"})
            assert_problem(response, 404, "not-found")
        response = await confined.post(f"/v1/conflicts/{mine['id']}/resolve", json={"note": "好"})
        assert response.status_code == 200, response.text

    assert sorted(c["status"] for c in await list_all(client, "/v1/conflicts")) == [
        "open",
        "open",
        "resolved",
    ]


# Resolutions that carry an action: it runs in the same transaction as closing the conflict.


async def duplicate_pair(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Two records of one company, one in 华东 and one in 华南, and their conflict."""
    await activate(client, regions["ruleset"])
    east = await create_customer(client, name="宁波港口有限公司", province="上海")
    south = await create_customer(client, name="宁波港口", province="广东")
    conflict = await only_conflict(client, kind="duplicate_customer")
    return east, south, conflict


def assign_to(customer: dict[str, Any], owner_id: str | None, **more: Any) -> dict[str, Any]:
    return {"type": "assign", "customer_id": customer["id"], "owner_id": owner_id} | more


async def resolve_with(
    client: httpx.AsyncClient,
    conflict: dict[str, Any],
    action: dict[str, Any],
    note: str = "华东跟进",
    **headers: str,
) -> httpx.Response:
    return await client.post(
        f"/v1/conflicts/{conflict['id']}/resolve",
        json={"note": note, "action": action},
        headers=headers,
    )


async def test_an_assign_action_assigns_and_locks_and_the_actor_is_kept(
    client: httpx.AsyncClient,
    regions: dict[str, Any],
    app: FastAPI,
    make_key: KeyMaker,
    declared_responses: DeclaredResponses,
) -> None:
    east, south, conflict = await duplicate_pair(client, regions)
    manager = await create_owner(client, external_id="crm-manager-1")
    key = await make_key(
        Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE, Scope.TRANSFERS_APPROVE, Scope.ACT_AS
    )
    owner_id = (await client.get(f"/v1/customers/{east['id']}")).json()["ownership"]["owner_id"]
    action = assign_to(south, owner_id, territory_id=regions["east"]["id"], ownership_version=1)

    async with http_client(app, declared_responses, key) as integration:
        response = await resolve_with(
            integration, conflict, action, **{"X-Act-As": "crm-manager-1", "If-Match": '"1"'}
        )

    assert response.status_code == 200, response.text
    closed = response.json()
    assert (closed["status"], closed["resolution_note"]) == ("resolved", "华东跟进")
    assert closed["resolution_action"] == action
    assert closed["closed_by_owner_id"] == manager["id"]
    ownership = (await client.get(f"/v1/customers/{south['id']}/ownership")).json()
    assert (ownership["owner_id"], ownership["territory_id"]) == (owner_id, regions["east"]["id"])
    assert (ownership["source"], ownership["locked"], ownership["version"]) == ("manual", True, 2)
    events = await list_all(client, f"/v1/customers/{south['id']}/history")
    assert [e["version"] for e in events] == [1, 2]
    assert events[-1]["reason"] == "华东跟进"
    assert events[-1]["actor_key_id"] == closed["closed_by_key_id"]
    assert events[-1]["acting_owner_id"] == manager["id"]
    (admin_key,) = [k for k in await list_all(client, "/v1/api-keys") if "admin" in k["scopes"]]
    assert closed["closed_by_key_id"] not in (None, admin_key["id"])


async def test_dismissing_keeps_the_acting_owner(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_key: KeyMaker,
    declared_responses: DeclaredResponses,
) -> None:
    await record(app, tie())
    conflict = await only_conflict(client)
    owner = await create_owner(client, external_id="crm-manager-2")
    key = await make_key(Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE, Scope.ACT_AS)

    async with http_client(app, declared_responses, key) as integration:
        response = await integration.post(
            f"/v1/conflicts/{conflict['id']}/dismiss",
            json={"note": "不是问题"},
            headers={"X-Act-As": "crm-manager-2"},
        )

    assert response.status_code == 200, response.text
    assert response.json()["closed_by_owner_id"] == owner["id"]
    assert response.json()["resolution_action"] is None


async def test_a_failing_action_leaves_the_conflict_open_and_changes_nothing(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    _, south, conflict = await duplicate_pair(client, regions)
    outsider = regions["wang"]["id"]  # not a member of 华东
    before = (await client.get(f"/v1/customers/{south['id']}/ownership")).json()

    refused = await resolve_with(
        client, conflict, assign_to(south, outsider, territory_id=regions["east"]["id"])
    )
    stale = await resolve_with(client, conflict, assign_to(south, None, ownership_version=5))
    unknown_owner = await resolve_with(client, conflict, assign_to(south, str(uuid.uuid4())))

    assert_problem(refused, 422, "owner-not-assignable")
    assert assert_problem(stale, 412, "stale-version")["current_version"] == 1
    problem = assert_problem(unknown_owner, 422, "invalid-reference")
    assert problem["errors"][0]["pointer"] == "#/action/owner_id"
    after = await client.get(f"/v1/conflicts/{conflict['id']}")
    assert (after.json()["status"], after.json()["version"]) == ("open", conflict["version"])
    assert (await client.get(f"/v1/customers/{south['id']}/ownership")).json() == before


async def test_an_action_needs_the_scope_of_its_own_operation(
    client: httpx.AsyncClient,
    regions: dict[str, Any],
    app: FastAPI,
    make_key: KeyMaker,
    declared_responses: DeclaredResponses,
) -> None:
    east, south, conflict = await duplicate_pair(client, regions)
    key = await make_key(Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE)

    async with http_client(app, declared_responses, key) as writer:
        assign = await resolve_with(writer, conflict, assign_to(south, None))
        merge = await resolve_with(
            writer,
            conflict,
            {"type": "merge", "survivor_id": east["id"], "merged_id": south["id"]},
        )

    problem = assert_problem(assign, 403, "forbidden")
    assert problem["missing_scopes"] == ["transfers:approve"]
    assert merge.status_code == 200, merge.text


async def test_a_merge_action_merges_and_closes_the_conflict_with_its_note(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    east, south, conflict = await duplicate_pair(client, regions)
    action = {"type": "merge", "survivor_id": east["id"], "merged_id": south["id"]}

    response = await resolve_with(client, conflict, action, note="同一家，保留华东的记录")

    assert response.status_code == 200, response.text
    closed = response.json()
    assert (closed["status"], closed["resolution_note"]) == ("resolved", "同一家，保留华东的记录")
    assert closed["resolution_action"] == action
    assert_problem(await client.get(f"/v1/customers/{south['id']}"), 404, "not-found")
    survivor = (await client.get(f"/v1/customers/{east['id']}")).json()
    assert survivor["ownership"] == east["ownership"]


async def test_an_action_must_name_the_conflicts_customers(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    east, _, conflict = await duplicate_pair(client, regions)
    stranger = await create_customer(client, province="广东")

    assign = await resolve_with(client, conflict, assign_to(stranger, None))
    merge = await resolve_with(
        client, conflict, {"type": "merge", "survivor_id": east["id"], "merged_id": stranger["id"]}
    )
    malformed = await resolve_with(client, conflict, {"type": "split", "customer_id": east["id"]})

    for response, pointer in ((assign, "customer_id"), (merge, "merged_id")):
        problem = assert_problem(response, 422, "action-not-applicable")
        assert problem["errors"][0]["pointer"] == f"#/action/{pointer}"
    assert_problem(malformed, 422, "validation-error")
    assert (await only_conflict(client, kind="duplicate_customer"))["status"] == "open"
    assert len(await list_all(client, "/v1/customers")) == 3


async def test_an_action_may_name_a_customer_the_sample_left_out(
    client: httpx.AsyncClient, regions: dict[str, Any], app: FastAPI
) -> None:
    await activate(client, regions["ruleset"])
    customer = await create_customer(client, province="上海")
    await record(app, *(tie() for _ in range(LISTED_CUSTOMERS)))
    await record(app, tie(uuid.UUID(customer["id"])))
    conflict = await only_conflict(client, customer_id=customer["id"])
    assert customer["id"] not in conflict["customer_ids"]

    response = await resolve_with(client, conflict, assign_to(customer, None))

    assert response.status_code == 200, response.text
    ownership = (await client.get(f"/v1/customers/{customer['id']}/ownership")).json()
    assert (ownership["owner_id"], ownership["locked"]) == (None, True)


async def test_racing_resolutions_with_actions_let_exactly_one_win(
    client: httpx.AsyncClient, regions: dict[str, Any]
) -> None:
    east, south, conflict = await duplicate_pair(client, regions)
    merge = {"type": "merge", "survivor_id": east["id"], "merged_id": south["id"]}
    assign = assign_to(south, regions["wang"]["id"])

    responses = await asyncio.gather(
        *(resolve_with(client, conflict, merge if n % 2 else assign) for n in range(10))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, [r.text for r in responses]
    assert set(statuses) <= {200, 404, 409}, statuses
    closed = (await client.get(f"/v1/conflicts/{conflict['id']}")).json()
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert closed["resolution_action"] == winner["resolution_action"]
    survivors = {c["id"] for c in await list_all(client, "/v1/customers")}
    if winner["resolution_action"]["type"] == "merge":
        assert survivors == {east["id"]}
    else:
        assert survivors == {east["id"], south["id"]}
        events = await list_all(client, f"/v1/customers/{south['id']}/history")
        assert [e["version"] for e in events] == [1, 2]
