"""Races on PostgreSQL, for real: two server processes on one database take a storm of manual
assignments, unlocks, transfers with overlapping and duplicate approvals, claims from the pools
(contended, and in batches), releases to them, hand-overs and a rule-set activation at once,
while a consumer follows the change feed. A few assignments are held open after their events
took their ids (`late_commits`) until the consumer has read events with larger ids, so the
consumer must still get events that commit after it read past them.

Afterwards, read straight from the database: every customer has an ownership row, each
customer's events carry versions 1..N without a gap and replay, in version order, to the row;
the consumer saw every event exactly once; every 2xx answer (assignments, unlocks, approvals,
claims, releases) is in the history as answered, and no refused request is; nothing answered
5xx.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.api.helpers import where
from tests.concurrency.invariants import History, ownership_violations, read_history
from tests.concurrency.late_commits import HELD, Gate, closed_gate, open_once_read_past
from tests.concurrency.servers import RoundRobin, issue_admin_key, running_servers

pytestmark = pytest.mark.postgresql

T = TypeVar("T")

SEED = 20261124
SERVERS = 2
# Requests in flight per server: within its connection pool, so no request waits long for one.
CONNECTIONS_PER_SERVER = 12
SERVER_SETTINGS = {"db_pool_size": 12, "db_max_overflow": 4, "db_pool_timeout_seconds": 30}
JOB_TIMEOUT_SECONDS = 60.0

PROVINCES = ["上海", "江苏", "浙江", "广东", "福建", "北京", "天津", "西藏"]
CUSTOMERS_PER_PROVINCE = 5
GROUP_ROOTS = 4
SUBSIDIARIES_PER_ROOT = 2
LOCKED_BEFORE = 10

ASSIGNMENTS = 180
UNLOCKS = 50
TRANSFERS = 30
HOT_CUSTOMERS = 20
CLAIMS = 40
BATCH_CLAIMS = 8
RELEASES = 25
# Assignments held open at the gate (`late_commits`) until the consumer read past them.
HELD_CUSTOMERS = 3
HELD_ASSIGNMENTS = 2  # per held customer
GATE_TIMEOUT_SECONDS = 60.0


# What each kind of request may answer; anything else (a 5xx above all) fails the test.
ALLOWED = {
    "read ownership": {200},
    "assign": {200, 409, 412, 422},
    "unlock": {200, 409, 412},
    "request transfer": {201, 409, 422},
    "approve": {200, 409},
    "reject": {200, 409},
    "cancel": {200, 409},
    "activate": {202},
    "handover": {202},
    "read job": {200},
    "read feed": {200},
    "claim": {200, 409, 412, 422},
    "claim batch": {200},
    "release": {200, 409, 412},
}


@dataclass
class Exchange:
    operation: str
    method: str
    path: str
    status: int
    body: Any
    request_id: str | None
    server: str
    sent: Any = None

    def __str__(self) -> str:
        text = str(self.body)
        return (
            f"{self.operation}: {self.method} {self.path} on {self.server} -> {self.status} "
            f"(request {self.request_id}) {text[:300]}"
        )


@dataclass
class Api:
    """Sends requests to the servers in turn and keeps every answer."""

    servers: RoundRobin
    exchanges: list[Exchange] = field(default_factory=list)

    async def call(self, operation: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        client = self.servers.next()
        response = await client.request(method, path, **kwargs)
        is_json = response.headers.get("content-type", "").endswith("json")
        self.exchanges.append(
            Exchange(
                operation=operation,
                method=method,
                path=path,
                status=response.status_code,
                body=response.json() if is_json and response.content else response.text,
                request_id=response.headers.get("x-request-id"),
                server=str(client.base_url),
                sent=kwargs.get("json"),
            )
        )
        return response

    async def setup(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.call("setup", method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        body: dict[str, Any] = response.json() if response.content else {}
        return body | {"location": response.headers.get("location")}


@dataclass
class World:
    territories: dict[str, str]
    owners: dict[str, str]
    customers: list[str]
    second_ruleset: str
    # (territory, owner or None for its pool) a manual assignment may aim at; some are refused.
    targets: list[tuple[str, str | None]] = field(default_factory=list)
    # Customers only the held assignments move: locked, so activation leaves them be, and sent
    # to pools, so no owner is locked, while their writers wait at the gate.
    held: list[str] = field(default_factory=list)


MEMBERS = {
    "country": ["H"],
    "east": ["A", "B", "C", "H"],
    "south": ["D", "E", "H"],
    "north": ["F", "G", "H"],
}


async def build_world(api: Api) -> World:
    territories, owners = await create_territories(api)
    first = await create_ruleset(api, "2027", territories, copy_active=False)
    for name, provinces, territory in (
        ("华东", ["上海", "江苏", "浙江"], "east"),
        ("华南", ["广东", "福建"], "south"),
        ("华北", ["北京", "天津"], "north"),
    ):
        condition = where("province", "in", provinces)
        await add_rule(api, first, name, condition, territories[territory], priority=10)
    customers = await create_customers(api)
    activation = await api.setup("POST", f"/v1/rulesets/{first}/activate")
    job = await wait_for_job(api, activation)
    assert job["status"] == "succeeded", f"the first activation: {job.get('error')} ({job})"

    # The re-division activated during the storm: three provinces change territory, one of
    # them to a named account.
    second = await create_ruleset(api, "2027 H2", territories, copy_active=True)
    for name, province, territory, owner_id in (
        ("浙江归华南", "浙江", "south", None),
        ("天津归华东", "天津", "east", None),
        ("福建大客户", "福建", "north", owners["G"]),
    ):
        condition = where("province", "eq", province)
        territory_id = territories[territory]
        await add_rule(api, second, name, condition, territory_id, priority=5, owner_id=owner_id)

    targets: list[tuple[str, str | None]] = [
        (territories[t], owners[o]) for t, letters in MEMBERS.items() for o in letters
    ]
    targets += [(territories[t], None) for t in MEMBERS]
    # Not members: refused with 422.
    targets += [(territories["east"], owners["D"]), (territories["north"], owners["A"])]
    held = []
    for number in range(HELD_CUSTOMERS):
        body = {"source": "crm", "external_id": f"S-held-{number}", "name": f"迟到客户{number}"}
        held.append((await api.setup("POST", "/v1/customers", json=body))["id"])
    return World(territories, owners, customers, second, targets, held)


async def create_territories(api: Api) -> tuple[dict[str, str], dict[str, str]]:
    """全国 with three regions below it, each with its own strategy, and their members."""
    country = await api.setup("POST", "/v1/territories", json={"name": "全国"})
    territories = {"country": country["id"]}
    for name, label, strategy in (
        ("east", "华东", "round_robin"),
        ("south", "华南", "least_loaded"),
        ("north", "华北", "weighted"),
    ):
        body = {"name": label, "parent_id": country["id"], "strategy": strategy}
        territories[name] = (await api.setup("POST", "/v1/territories", json=body))["id"]
    owners = {}
    for letter in "ABCDEFGH":
        body = {"external_id": f"rep-{letter}", "name": f"销售{letter}"}
        owners[letter] = (await api.setup("POST", "/v1/owners", json=body))["id"]
    for territory, letters in MEMBERS.items():
        for letter in letters:
            await api.setup(
                "PUT",
                f"/v1/territories/{territories[territory]}/members/{owners[letter]}",
                json={"weight": 1 + "ABCDEFGH".index(letter) % 3},
            )
    return territories, owners


async def create_ruleset(
    api: Api, name: str, territories: dict[str, str], *, copy_active: bool
) -> str:
    body = {"name": name, "default_territory_id": territories["country"]}
    created = await api.setup("POST", "/v1/rulesets", json=body | {"copy_active": copy_active})
    ruleset_id: str = created["id"]
    return ruleset_id


async def add_rule(
    api: Api,
    ruleset_id: str,
    name: str,
    condition: dict[str, Any],
    territory_id: str,
    *,
    priority: int,
    owner_id: str | None = None,
) -> None:
    await api.setup(
        "POST",
        f"/v1/rulesets/{ruleset_id}/rules",
        json={
            "name": name,
            "priority": priority,
            "condition": condition,
            "territory_id": territory_id,
            "owner_id": owner_id,
        },
    )


async def create_customers(api: Api) -> list[str]:
    customers = []
    for index in range(len(PROVINCES) * CUSTOMERS_PER_PROVINCE):
        body = {
            "source": "crm",
            "external_id": f"S{index:04d}",
            "name": f"风暴测试客户{index}有限公司",
            "province": PROVINCES[index % len(PROVINCES)],
            "industry": "manufacturing",
        }
        customers.append((await api.setup("POST", "/v1/customers", json=body))["id"])
    for root in customers[:GROUP_ROOTS]:
        for number in range(SUBSIDIARIES_PER_ROOT):
            body = {
                "source": "crm",
                "external_id": f"S-{root[-6:]}-{number}",
                "name": f"风暴测试子公司{root[-6:]}{number}",
                "province": PROVINCES[(number + 3) % len(PROVINCES)],
                "parent_id": root,
            }
            customers.append((await api.setup("POST", "/v1/customers", json=body))["id"])
    return customers


async def wait_for_job(api: Api, accepted: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while True:
        job: dict[str, Any] = (await api.call("read job", "GET", accepted["location"])).json()
        if job.get("status") in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.1)


# ----------------------------------------------------------------------------- the storm


async def read_ownership(api: Api, customer_id: str) -> tuple[dict[str, Any], str]:
    response = await api.call("read ownership", "GET", f"/v1/customers/{customer_id}/ownership")
    body: dict[str, Any] = response.json()
    return body, response.headers.get("etag", '"0"')


async def assign(
    api: Api,
    customer_id: str,
    target: tuple[str, str | None],
    pause: float,
    stale: bool,
    reason: str = "风暴: 手工分配",
) -> None:
    current, etag = await read_ownership(api, customer_id)
    await asyncio.sleep(pause)
    if stale:
        etag = f'"{max(current.get("version", 1) - 1, 0)}"'
    territory_id, owner_id = target
    await api.call(
        "assign",
        "PUT",
        f"/v1/customers/{customer_id}/ownership",
        json={"territory_id": territory_id, "owner_id": owner_id, "reason": reason},
        headers={"If-Match": etag},
    )


async def unlock(api: Api, customer_id: str, pause: float) -> None:
    _, etag = await read_ownership(api, customer_id)
    await asyncio.sleep(pause)
    await api.call(
        "unlock",
        "POST",
        f"/v1/customers/{customer_id}/ownership/unlock",
        json={"reason": "风暴: 解锁"},
        headers={"If-Match": etag},
    )


def claimants(world: World, territory_id: str) -> list[str]:
    """The owners who may claim from the territory's pool: its members."""
    name = next(n for n, t in world.territories.items() if t == territory_id)
    return [world.owners[letter] for letter in MEMBERS[name]]


async def claim(api: Api, world: World, customer_id: str, racers: int, strangers: bool) -> None:
    """Reps on a pool screen: members of the customer's territory (two at once, racing, when
    `racers` is 2; with `strangers`, A and D, one of whom is no member) claim it. Those not in a
    pool are refused."""
    current, _ = await read_ownership(api, customer_id)
    members = claimants(world, current["territory_id"])
    if strangers:
        members = [world.owners["A"], world.owners["D"]]
    racing = members[:racers]
    await asyncio.gather(
        *(
            api.call("claim", "POST", f"/v1/customers/{customer_id}/claim", json={"owner_id": o})
            for o in racing
        )
    )


async def claim_batch(api: Api, world: World, customer_ids: list[str]) -> None:
    """One owner claims several customers at once: those waiting in the first one's pool (and
    any the others have become meanwhile)."""
    current, _ = await read_ownership(api, customer_ids[0])
    members = claimants(world, current["territory_id"])
    await api.call(
        "claim batch",
        "POST",
        "/v1/pool/claims",
        json={"customer_ids": customer_ids, "owner_id": members[0]},
    )


async def release(api: Api, customer_id: str, pause: float) -> None:
    """The current owner gives the customer back to its pool."""
    current, etag = await read_ownership(api, customer_id)
    await asyncio.sleep(pause)
    await api.call(
        "release",
        "POST",
        f"/v1/customers/{customer_id}/release",
        json={"reason": "风暴: 退回公海", "owner_id": current.get("owner_id")},
        headers={"If-Match": etag},
    )


async def transfer(
    api: Api, customer_ids: list[str], target: tuple[str, str], decisions: list[str]
) -> None:
    territory_id, owner_id = target
    created = await api.call(
        "request transfer",
        "POST",
        "/v1/transfers",
        json={
            "customer_ids": customer_ids,
            "to_owner_id": owner_id,
            "to_territory_id": territory_id,
            "reason": "风暴: 转移",
        },
    )
    if created.status_code != 201:
        return
    path = f"/v1/transfers/{created.json()['id']}"
    await asyncio.gather(
        *(api.call(verb, "POST", f"{path}/{verb}", json={"note": verb}) for verb in decisions)
    )


async def after(pause: float, step: Callable[[], Awaitable[T]]) -> T:
    await asyncio.sleep(pause)
    return await step()


async def follow_feed(
    api: Api, done: asyncio.Event, seen: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Poll the change feed until the storm is over, then read it to its end, into `seen`."""
    cursor: str | None = None
    while True:
        finished = done.is_set()
        params: dict[str, Any] = {"limit": 50} | ({"after": cursor} if cursor else {})
        response = await api.call("read feed", "GET", "/v1/events", params=params)
        if response.status_code != 200:
            await asyncio.sleep(0.05)
            continue
        page = response.json()
        seen.extend(page["items"])
        # At the end when nothing is new; a cursor that does not move counts as the end too,
        # so a feed that repeats itself is reported instead of read forever.
        at_end = not page["items"] or page["next_cursor"] == cursor
        cursor = page["next_cursor"]
        if at_end:
            if finished:
                return seen
            await asyncio.sleep(0.05)


def plan_storm(api: Api, world: World, rng: random.Random) -> list[Awaitable[Any]]:
    steps: list[Awaitable[Any]] = []
    for _ in range(ASSIGNMENTS):
        stale = rng.random() < 0.1
        pause = rng.uniform(0, 0.3) if rng.random() < 0.3 else 0.0
        steps.append(
            assign(api, rng.choice(world.customers), rng.choice(world.targets), pause, stale)
        )
    pools = [(territory_id, None) for territory_id in world.territories.values()]
    for customer_id in world.held * HELD_ASSIGNMENTS:
        steps.append(assign(api, customer_id, rng.choice(pools), rng.uniform(0, 0.5), False, HELD))
    for _ in range(UNLOCKS):
        steps.append(unlock(api, rng.choice(world.customers), rng.uniform(0, 0.2)))
    for _ in range(RELEASES):
        steps.append(release(api, rng.choice(world.customers), rng.uniform(0, 0.2)))
    for _ in range(CLAIMS):
        customer_id, racers = rng.choice(world.customers), rng.choice([1, 2])
        strangers = rng.random() < 0.15
        steps.append(
            after(rng.uniform(0, 1.0), partial(claim, api, world, customer_id, racers, strangers))
        )
    for _ in range(BATCH_CLAIMS):
        batch = rng.sample(world.customers, 4)
        steps.append(after(rng.uniform(0, 1.0), partial(claim_batch, api, world, batch)))
    hot = world.customers[:HOT_CUSTOMERS]
    t, o = world.territories, world.owners
    transfer_targets = [
        (t["east"], o["H"]),
        (t["south"], o["H"]),
        (t["north"], o["H"]),
        (t["south"], o["D"]),
        (t["east"], o["B"]),
    ]
    decision_patterns = [
        ["approve", "approve"],
        ["approve", "approve", "approve"],
        ["approve", "reject"],
        ["cancel", "approve"],
        ["approve"],
        ["reject"],
    ]
    for _ in range(TRANSFERS):
        steps.append(
            transfer(
                api,
                rng.sample(hot, rng.randint(2, 8)),
                rng.choice(transfer_targets),
                rng.choice(decision_patterns),
            )
        )
    steps.append(
        after(
            0.3,
            lambda: api.call("activate", "POST", f"/v1/rulesets/{world.second_ruleset}/activate"),
        )
    )
    steps.append(
        after(
            0.2,
            lambda: api.call(
                "handover",
                "POST",
                f"/v1/owners/{o['A']}/handover",
                json={"to_owner_id": o["H"], "reason": "A 离职, 交接给 H"},
            ),
        )
    )
    steps.append(
        after(
            1.0,
            lambda: api.call(
                "handover",
                "POST",
                f"/v1/owners/{o['H']}/handover",
                json={"reason": "H 调岗, 客户按区域策略重新分配"},
            ),
        )
    )
    rng.shuffle(steps)
    return steps


async def lock_some(api: Api, world: World, rng: random.Random) -> None:
    """Lock a few customers by hand first, so that the storm's unlocks have work."""
    for customer_id in rng.sample(world.customers, LOCKED_BEFORE) + world.held:
        _, etag = await read_ownership(api, customer_id)
        await api.setup(
            "PUT",
            f"/v1/customers/{customer_id}/ownership",
            json={"territory_id": world.territories["country"], "reason": "先锁定"},
            headers={"If-Match": etag},
        )


# ----------------------------------------------------------------------------- the checks


def unexpected_answers(exchanges: list[Exchange]) -> list[str]:
    problems = []
    for exchange in exchanges:
        allowed = (
            {200, 201, 202, 204} if exchange.operation == "setup" else ALLOWED[exchange.operation]
        )
        if exchange.status >= 500 or exchange.status not in allowed:
            problems.append(str(exchange))
    return problems


def changes_answered(exchange: Exchange) -> list[tuple[str, int, dict[str, Any]]]:
    """(customer, version, place) of each ownership change a 2xx answer reports."""
    body = exchange.body
    if exchange.operation in ("assign", "unlock", "claim", "release") or (
        exchange.operation == "setup" and exchange.method == "PUT" and "ownership" in exchange.path
    ):
        place = {k: body[k] for k in ("territory_id", "owner_id", "locked", "source")}
        return [(body["customer_id"], body["version"], place)]
    if exchange.operation == "claim batch":
        claimed = {"owner_id": exchange.sent["owner_id"], "locked": True, "source": "claim"}
        return [
            (item["customer_id"], item["version"], claimed)
            for item in body["items"]
            if item["status"] == 200
        ]
    if exchange.operation == "approve":
        return [
            (
                item["customer_id"],
                item["expected_version"] + 1,
                {
                    "territory_id": item["to_territory_id"],
                    "owner_id": body["to_owner_id"],
                    "locked": True,
                    "source": "transfer",
                },
            )
            for item in body["items"]
            if item["status"] == "applied"
        ]
    return []


def unreflected_answers(exchanges: list[Exchange], history: History) -> list[str]:
    """2xx answers whose change is not in the history as answered (by that request), and
    refused requests that changed something."""
    events = {
        (str(event.customer_id), event.version): event
        for customer_events in history.events.values()
        for event in customer_events
    }
    written_by = Counter(e.request_id for e in events.values() if e.request_id)
    problems = []
    for exchange in exchanges:
        if not 200 <= exchange.status < 300:
            if written_by[exchange.request_id or ""]:
                problems.append(f"refused, yet wrote events: {exchange}")
            continue
        for customer_id, version, place in changes_answered(exchange):
            event = events.get((customer_id, version))
            if event is None:
                problems.append(f"no event for version {version} of {customer_id}: {exchange}")
                continue
            stored = {
                "territory_id": str(event.territory_id) if event.territory_id else None,
                "owner_id": str(event.owner_id) if event.owner_id else None,
                "locked": event.locked,
                "source": str(event.source),
            }
            stored = {k: v for k, v in stored.items() if k in place}  # what the answer told
            if (stored, event.request_id) != (place, exchange.request_id):
                problems.append(
                    f"event {event.id} ({stored}, request {event.request_id}) is not what "
                    f"{exchange.request_id} answered ({place}) for version {version} of "
                    f"{customer_id}"
                )
    return problems


def feed_problems(seen: list[dict[str, Any]], history: History) -> list[str]:
    counts = Counter(event["id"] for event in seen)
    problems = [f"the feed gave event {i} {n} times" for i, n in counts.items() if n > 1]
    missing = history.event_ids - counts.keys()
    unknown = counts.keys() - history.event_ids
    if missing:
        problems.append(f"the feed never gave {len(missing)} events: {sorted(missing)[:20]}")
    if unknown:
        problems.append(f"the feed gave {len(unknown)} events not stored: {sorted(unknown)[:20]}")
    positions = [event["position"] for event in seen]
    if positions != sorted(set(positions)):
        problems.append("the feed's positions do not strictly increase")
    # The storm really committed out of id order: an event was placed in the feed after one with
    # a larger id (which the consumer may have read already).
    stored = [event for events in history.events.values() for event in events]
    by_id = [e.position for e in sorted(stored, key=lambda e: e.id) if e.position is not None]
    if by_id == sorted(by_id):
        problems.append("no event committed after one with a larger id was placed in the feed")
    return problems


# ----------------------------------------------------------------------------- the test


async def storm(
    api: Api, reader: Api, world: World, rng: random.Random, gate: Gate
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Fire the storm with a feed consumer running, opening the gate once the consumer read
    past a held writer; wait for the jobs it started. Returns the finished jobs and the events
    the consumer saw."""
    done = asyncio.Event()
    seen: list[dict[str, Any]] = []
    consumer = asyncio.create_task(follow_feed(reader, done, seen))
    gatekeeper = asyncio.create_task(open_once_read_past(gate, seen, timeout=GATE_TIMEOUT_SECONDS))
    try:
        answers = await asyncio.gather(*plan_storm(api, world, rng))
        jobs = [
            await wait_for_job(api, {"location": response.headers["location"]})
            for response in answers
            if isinstance(response, httpx.Response) and response.status_code == 202
        ]
        done.set()
        return jobs, await asyncio.wait_for(consumer, JOB_TIMEOUT_SECONDS)
    finally:
        consumer.cancel()
        gatekeeper.cancel()


async def test_a_storm_on_two_servers_keeps_one_owner_and_one_unbroken_history_per_customer(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    key = await issue_admin_key(fresh_postgres_url)
    async with (
        closed_gate(fresh_postgres_url) as gate,
        running_servers(fresh_postgres_url, SERVERS, tmp_path, **SERVER_SETTINGS) as servers,
    ):
        clients = RoundRobin(servers, key, connections=CONNECTIONS_PER_SERVER)
        # The consumer has connections of its own, as another process would: it does not queue
        # behind the storm's requests.
        reading = RoundRobin(servers, key, connections=1)
        try:
            api, reader = Api(clients), Api(reading)
            world = await build_world(api)
            await lock_some(api, world, rng)
            jobs, seen = await storm(api, reader, world, rng, gate)
        finally:
            await clients.aclose()
            await reading.aclose()
        logs = {server.base_url: server.log_tail(30) for server in servers}

    engine = create_async_engine(fresh_postgres_url)
    try:
        async with engine.connect() as connection:
            violations = await ownership_violations(connection)
            history = await read_history(connection)
    finally:
        await engine.dispose()

    failures: list[str] = []
    failures += [f"answer: {line}" for line in unexpected_answers(api.exchanges + reader.exchanges)]
    failures += [f"job: {job}" for job in jobs if job.get("status") != "succeeded"]
    if len(jobs) != 3:
        failures.append(f"expected an activation and two hand-overs as jobs, got {len(jobs)}")
    failures += [f"invariant: {line}" for line in violations]
    unowned = history.customers - history.ownerships.keys()
    failures += [f"invariant: customer {c} has no ownership row" for c in sorted(unowned)]
    failures += [f"feed: {line}" for line in feed_problems(seen, history)]
    failures += [f"history: {line}" for line in unreflected_answers(api.exchanges, history)]
    # The storm really raced: some writers won, some lost on a stale version.
    statuses = Counter((e.operation, e.status) for e in api.exchanges)
    happened = (
        ("assign", 200),
        ("assign", 412),
        ("unlock", 200),
        ("approve", 200),
        ("claim", 200),
        ("claim", 409),
        ("release", 200),
    )
    for must_happen in happened:
        if not statuses[must_happen]:
            failures.append(f"the storm never produced {must_happen}: {sorted(statuses.items())}")
    assert not failures, (
        f"{len(failures)} problems in a storm of {len(api.exchanges)} requests "
        f"(seed {SEED}):\n" + "\n".join(failures[:80]) + f"\n\nserver logs: {logs}"
    )
