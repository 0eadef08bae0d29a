"""Conflicts: logged once per cause while open, listed and filtered, resolved or dismissed."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from territory_service.conflicts.recorder import record_signals
from territory_service.rules.resolution import ConflictKind, ConflictSignal
from territory_service.security.scopes import Scope
from tests.api.helpers import assert_problem, create_territory, list_all
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
