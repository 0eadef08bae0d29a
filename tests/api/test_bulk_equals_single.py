"""The bulk activation path gives every customer the owner it gets when resolved alone.

Random rule sets (ties, ranges at their edges, tags, custom attributes) over random customers,
with subsidiaries that follow their group, on SQLite and PostgreSQL: once through the
activation job, once customer by customer in id order (each its own transaction), starting
from no ownership both times.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import RowMapping, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from territory_service.conflicts.models import Conflict
from territory_service.customers.models import Customer
from territory_service.jobs import service as jobs
from territory_service.ownership.models import Ownership, OwnershipEvent
from territory_service.ownership.resolver import resolve_customers
from tests.api.helpers import create_owner, create_territory

PROVINCES = ["上海", "江苏", "广东", None]
TAGS = ["strategic", "key", "new"]


def random_condition(rng: random.Random) -> dict[str, Any]:
    choices: list[dict[str, Any]] = [
        {"field": "province", "op": "in", "value": rng.sample(PROVINCES[:3], 2)},
        {"field": "employees", "op": rng.choice(["gte", "lt"]), "value": rng.choice([10, 50, 100])},
        {"field": "employees", "op": "between", "value": [10, 100]},
        {"field": "tags", "op": "contains_any", "value": rng.sample(TAGS, 1)},
        {"field": "attributes.channel", "op": "eq", "value": rng.choice(["direct", "partner"])},
        {"field": "tier", "op": "neq", "value": "C"},
    ]
    return {
        "any_of": [
            {"all_of": rng.sample(choices, rng.randint(1, 2))} for _ in range(rng.randint(1, 2))
        ]
    }


def random_customer(rng: random.Random, n: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "crm",
        "external_id": f"R{n}",
        "name": f"随机{n}",
        "province": rng.choice(PROVINCES),
        "employees": rng.choice([None, 9, 10, 11, 50, 99, 100, 101]),
        "tier": rng.choice(["A", "B", "C", None]),
        "tags": rng.sample(TAGS, rng.randint(0, 2)),
    }
    if rng.random() < 0.7:
        body["attributes"] = {"channel": rng.choice(["direct", "partner", True])}
    return body


async def conflicts_now(engine: AsyncEngine) -> dict[tuple[str, str], tuple[int, int]]:
    """Occurrences and customers per open conflict."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(
                Conflict.kind, Conflict.cause, Conflict.occurrences, Conflict.customer_count
            ).where(Conflict.status == "open")
        )
        return {(str(kind), cause): (n, customers) for kind, cause, n, customers in rows}


async def owners_now(engine: AsyncEngine) -> dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Ownership.customer_id, Ownership.territory_id, Ownership.owner_id)
        )
        return {c: (t, o) for c, t, o in rows}


async def build_pool(client: httpx.AsyncClient, rng: random.Random) -> World:
    """A root, three territories (one per strategy) with members of random weight and capacity,
    one with no members, and 40 random customers, some of them subsidiaries."""
    root = await create_territory(client)
    territories = []
    for strategy in ("round_robin", "weighted", "least_loaded"):
        territory = await create_territory(client, parent_id=root["id"], strategy=strategy)
        for _ in range(rng.randint(1, 3)):
            owner = await create_owner(client)
            member = {"weight": rng.randint(1, 3), "capacity": rng.choice([None, 2, 5])}
            await client.put(
                f"/v1/territories/{territory['id']}/members/{owner['id']}", json=member
            )
        territories.append(territory)
    territories.append(await create_territory(client, parent_id=root["id"]))
    created: list[str] = []
    for n in range(40):
        body = random_customer(rng, n)
        if created and rng.random() < 0.2:  # a subsidiary of an earlier customer's group
            body["parent_id"] = rng.choice(created)
        response = await client.post("/v1/customers", json=body)
        assert response.status_code == 201
        created.append(response.json()["id"])
    return World(root, territories, created)


@dataclass
class World:
    root: dict[str, Any]
    territories: list[dict[str, Any]]
    customers: list[str]


async def activate_random_ruleset(
    client: httpx.AsyncClient, rng: random.Random, world: World
) -> None:
    ruleset = (
        await client.post(
            "/v1/rulesets",
            json={
                "name": "random",
                "default_territory_id": world.root["id"],
                "tie_policy": rng.choice(["first_created", "pool"]),
            },
        )
    ).json()
    for n in range(8):
        body = {
            "name": f"r{n}",
            "priority": rng.randint(1, 3),
            "condition": random_condition(rng),
            "territory_id": rng.choice(world.territories)["id"],
        }
        assert (
            await client.post(f"/v1/rulesets/{ruleset['id']}/rules", json=body)
        ).status_code == 201
    assert (await client.post(f"/v1/rulesets/{ruleset['id']}/activate")).status_code == 202
    await jobs.wait_for_all()


async def resolve_one_by_one(app: FastAPI) -> None:
    """Resolve every customer in id order, each in its own transaction."""
    async with app.state.session_factory() as session:
        ids = list((await session.execute(select(Customer.id).order_by(Customer.id))).scalars())
    for customer_id in ids:
        async with app.state.session_factory() as session, session.begin():
            customer = await session.get(Customer, customer_id)
            assert customer is not None
            await resolve_customers(session, [customer], actor=None, reason="one by one")


async def resolve_one_by_one_from(
    app: FastAPI,
    engine: AsyncEngine,
    *,
    ownerships: Sequence[RowMapping],
    conflicts: Sequence[RowMapping],
) -> None:
    """Put ownership and conflicts back as they were (events aside), then resolve each
    customer alone."""
    async with engine.begin() as connection:
        await connection.execute(delete(OwnershipEvent))
        await connection.execute(delete(Ownership))
        await connection.execute(delete(Conflict))
        if ownerships:
            await connection.execute(insert(Ownership), [dict(row) for row in ownerships])
        if conflicts:
            await connection.execute(insert(Conflict), [dict(row) for row in conflicts])
    await resolve_one_by_one(app)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_bulk_activation_equals_resolving_each_customer_alone(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine, seed: int
) -> None:
    rng = random.Random(seed)
    world = await build_pool(client, rng)
    await activate_random_ruleset(client, rng, world)
    bulk, bulk_conflicts = await owners_now(engine), await conflicts_now(engine)

    await resolve_one_by_one_from(app, engine, ownerships=[], conflicts=[])

    assert len(bulk) == 40
    assert await owners_now(engine) == bulk
    assert await conflicts_now(engine) == bulk_conflicts


@pytest.mark.parametrize("seed", [4, 5, 6])
async def test_bulk_redivision_equals_resolving_each_customer_alone(
    client: httpx.AsyncClient, app: FastAPI, engine: AsyncEngine, seed: int
) -> None:
    """A second rule set over customers that already have owners, some of them locked by
    hand: most stay (stability first), some move."""
    rng = random.Random(seed)
    world = await build_pool(client, rng)
    await activate_random_ruleset(client, rng, world)
    for customer_id in rng.sample(world.customers, 4):
        current = await client.get(f"/v1/customers/{customer_id}/ownership")
        locked = await client.put(
            f"/v1/customers/{customer_id}/ownership",
            json={"territory_id": rng.choice(world.territories)["id"], "reason": "by hand"},
            headers={"If-Match": current.headers["etag"]},
        )
        assert locked.status_code == 200, locked.text
    async with engine.connect() as connection:
        before = (await connection.execute(select(Ownership.__table__))).mappings().all()
        conflicts = (await connection.execute(select(Conflict.__table__))).mappings().all()
    await activate_random_ruleset(client, rng, world)
    bulk, bulk_conflicts = await owners_now(engine), await conflicts_now(engine)

    await resolve_one_by_one_from(app, engine, ownerships=before, conflicts=conflicts)

    places = {row["customer_id"]: (row["territory_id"], row["owner_id"]) for row in before}
    stayed = sum(1 for customer_id, place in bulk.items() if places[customer_id] == place)
    assert 0 < stayed < len(bulk)  # the input exercises both staying and moving
    assert await owners_now(engine) == bulk
    assert await conflicts_now(engine) == bulk_conflicts
