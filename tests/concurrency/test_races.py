"""Concurrent writers on one resource: exactly one wins, the rest get a clear 4xx, no 5xx.

The requests run at once over the app's connection pool, so their transactions really
interleave in the database (PostgreSQL row locks; SQLite's single writer).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.api.helpers import create_customer, create_territory, customer_body, list_all

WRITERS = 20


async def test_concurrent_patches_with_the_same_if_match_let_exactly_one_win(
    client: httpx.AsyncClient,
) -> None:
    customer = await create_customer(client, tier="C")
    path = f"/v1/customers/{customer['id']}"

    responses = await asyncio.gather(
        *(
            client.patch(path, json={"tier": f"T{i}"}, headers={"If-Match": '"1"'})
            for i in range(WRITERS)
        )
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1, statuses
    assert set(statuses) <= {200, 409, 412}, statuses
    winner = next(r.json() for r in responses if r.status_code == 200)
    final = (await client.get(path)).json()
    assert (final["version"], final["tier"]) == (2, winner["tier"])


async def test_concurrent_creates_of_one_external_id_store_one_customer(
    client: httpx.AsyncClient,
) -> None:
    body = customer_body(external_id="RACE-1")

    responses = await asyncio.gather(
        *(client.post("/v1/customers", json=body) for _ in range(WRITERS))
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1, statuses
    assert set(statuses) <= {201, 409}, statuses
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    losers = [r.json() for r in responses if r.status_code == 409]
    assert all(p.get("existing_id", winner) == winner for p in losers)
    assert len(await list_all(client, "/v1/customers", external_id="RACE-1")) == 1


async def test_concurrent_overlapping_batches_all_succeed_and_store_each_key_once(
    client: httpx.AsyncClient,
) -> None:
    keys = [f"OV{i:03d}" for i in range(60)]
    batches = [
        [customer_body(external_id=key, tier=f"T{n}") for key in keys[n * 10 : n * 10 + 30]]
        for n in range(4)
    ]

    responses = await asyncio.gather(
        *(client.post("/v1/customers/batch", json={"items": items}) for items in batches)
    )

    # A batch that loses a race on a key is re-planned; each rival can make it lose once.
    assert [r.status_code for r in responses] == [200] * len(batches), [r.text for r in responses]
    stored = await list_all(client, "/v1/customers", limit=1000)
    assert sorted(c["external_id"] for c in stored) == keys
    assert sum(r.json()["created"] for r in responses) == len(keys)


async def test_concurrent_opposite_moves_never_make_a_cycle(client: httpx.AsyncClient) -> None:
    first = await create_territory(client)
    second = await create_territory(client)

    responses = await asyncio.gather(
        client.patch(f"/v1/territories/{first['id']}", json={"parent_id": second["id"]}),
        client.patch(f"/v1/territories/{second['id']}", json={"parent_id": first["id"]}),
    )

    assert sorted(r.status_code for r in responses) == [200, 409]
    parents = {
        t["id"]: t["parent_id"]
        for t in [(await client.get(f"/v1/territories/{x['id']}")).json() for x in (first, second)]
    }
    assert parents[first["id"]] is None or parents[second["id"]] is None
