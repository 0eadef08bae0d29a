"""Activating a rule set over a large pool on PostgreSQL: wall time, customers per second, peak
memory, against the time to merely stream the same rows measured in the same run.

Run: `make bench` (or `.venv/bin/python -m bench.activation_bench`). It makes a fresh
database `territory_bench` on the PostgreSQL of BENCH_DATABASE_URL (default: the local server)
with the migrations, fills it in SQL, then times:

1. the first activation: every customer gets its first ownership;
2. a re-division in which about a fifth of the customers change territory;
3. the same rule set again: nothing changes.

It does so once per `--replicas` count (default 1, then 2, on a fresh database each): this
process plus that many less one `territory-service work` processes share each job's pieces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from territory_service.config import Settings
from territory_service.db import create_engine, create_session_factory
from territory_service.demo.catalog import INDUSTRIES, PROVINCES, REGIONS
from territory_service.heap import settle_heap
from territory_service.migrate import upgrade_to_head
from territory_service.owners.models import Owner
from territory_service.ownership.models import Ownership
from territory_service.ownership.pool_run import PoolRun
from territory_service.rulesets.activation import CHUNK, re_divide_now
from territory_service.rulesets.compiled import compiled
from territory_service.rulesets.models import RuleRow, RuleSet, RuleSetState
from territory_service.territories.models import DistributionStrategy, Territory, TerritoryMember

SERVER = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "territory_bench"
MEMBERS_PER_PROVINCE = 3
# Provinces whose rule points to a neighbour in the re-division: 6 of 31, about a fifth.
REDIVIDED = 6


def _where(*predicates: dict[str, Any]) -> dict[str, Any]:
    return {"any_of": [{"all_of": list(predicates)}]}


async def recreate_database() -> str:
    admin = create_async_engine(SERVER, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        await connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    await admin.dispose()
    url = SERVER.rsplit("/", 1)[0] + f"/{DATABASE}"
    await asyncio.to_thread(upgrade_to_head, url)
    return url


async def fill(session: AsyncSession, customers: int) -> dict[str, Territory]:
    """Territories (全国, regions, provinces), three reps per province, and the customers."""
    root = Territory(name="全国", code="CN", strategy=DistributionStrategy.ROUND_ROBIN)
    territories = {"CN": root}
    session.add(root)
    await session.flush()
    for code, name, strategy in REGIONS:
        territories[code] = Territory(name=name, code=code, parent_id=root.id, strategy=strategy)
    session.add_all(territories.values())
    await session.flush()
    for province in PROVINCES:
        territories[province.code] = Territory(
            name=province.name,
            code=province.code,
            parent_id=territories[province.region_code].id,
            strategy=DistributionStrategy.ROUND_ROBIN,
        )
    session.add_all(territories.values())
    await session.flush()
    for province in PROVINCES:
        for n in range(MEMBERS_PER_PROVINCE):
            owner = Owner(external_id=f"{province.code}-{n}", name=f"{province.name} 销售 {n}")
            session.add(owner)
            await session.flush()
            session.add(
                TerritoryMember(territory_id=territories[province.code].id, owner_id=owner.id)
            )
    provinces = "ARRAY[" + ",".join(f"'{p.name}'" for p in PROVINCES) + "]"
    industries = "ARRAY[" + ",".join(f"'{i}'" for i in INDUSTRIES) + "]"
    # Ids rise with creation order, as the service's UUIDv7 ids do.
    await session.execute(
        text(
            f"""
            INSERT INTO customers (id, source, external_id, name, normalized_name, country,
                province, industry, employees, annual_revenue, tier, tags, attributes, version,
                created_at, updated_at)
            SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'bench',
                'C' || i, '客户 ' || i, '客户' || i, '中国',
                ({provinces})[1 + (i * 7) % {len(PROVINCES)}],
                ({industries})[1 + (i * 13) % {len(INDUSTRIES)}],
                (i * 7919) % 5000, ((i * 104729) % 1000000) * 100.0,
                (ARRAY['A','B','C','D'])[1 + i % 4],
                CASE WHEN i % 50 = 0 THEN '["strategic"]'::jsonb ELSE '[]'::jsonb END,
                '{{}}'::jsonb, 1, now(), now()
            FROM generate_series(1::bigint, :count) AS i
            """
        ),
        {"count": customers},
    )
    await session.execute(text("ANALYZE"))
    return territories


async def add_ruleset(
    session: AsyncSession, territories: dict[str, Territory], number: int, moved: int
) -> RuleSet:
    """Provinces to their territory; large customers of an industry to the region; strategic
    accounts to 全国. The first `moved` provinces point to their neighbour instead."""
    ruleset = RuleSet(
        number=number,
        name=f"division {number}",
        state=RuleSetState.DRAFT,
        default_territory_id=territories["CN"].id,
    )
    session.add(ruleset)
    await session.flush()
    rules: list[tuple[int, dict[str, Any], Territory]] = [
        (10, _where({"field": "tags", "op": "contains_any", "value": ["strategic"]}),
         territories["CN"]),
    ]  # fmt: skip
    for code, _, _ in REGIONS:
        names = [p.name for p in PROVINCES if p.region_code == code]
        for industry in INDUSTRIES:
            condition = _where(
                {"field": "province", "op": "in", "value": names},
                {"field": "industry", "op": "eq", "value": industry},
                {"field": "employees", "op": "gte", "value": 4800},
            )
            rules.append((50, condition, territories[code]))
    for index, province in enumerate(PROVINCES):
        target = PROVINCES[(index + 1) % len(PROVINCES)] if index < moved else province
        condition = _where({"field": "province", "op": "eq", "value": province.name})
        rules.append((100, condition, territories[target.code]))
    session.add_all(
        RuleRow(
            ruleset_id=ruleset.id,
            name=f"rule {position}",
            priority=priority,
            condition=condition,
            territory_id=territory.id,
            position=position,
        )
        for position, (priority, condition, territory) in enumerate(rules)
    )
    return ruleset


async def activate(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, ruleset_id: uuid.UUID
) -> dict[str, Any]:
    async with session_factory() as session, session.begin():
        await session.execute(text("UPDATE rulesets SET state = 'archived' WHERE state = 'active'"))
        ruleset = await session.get(RuleSet, ruleset_id)
        assert ruleset is not None
        ruleset.state = RuleSetState.ACTIVE
    job = await re_divide_now(session_factory, settings, reason="bench")
    return job.result


async def stream_only(
    session_factory: async_sessionmaker[AsyncSession], ruleset_id: uuid.UUID
) -> dict[str, Any]:
    """The floor: read every customer with the same columns and chunks, decide nothing."""
    async with session_factory() as session, session.begin():
        ruleset = await session.get(RuleSet, ruleset_id)
        assert ruleset is not None
        run = await PoolRun.prepare(session, await compiled(session, ruleset))
    after, count = None, 0
    while True:
        async with session_factory() as session, session.begin():
            rows = await run.read(session, after=after, limit=CHUNK)
        if not rows:
            return {"customers": count, "changed": 0}
        after, count = rows[-1][0], count + len(rows)


async def timed(work: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    outcome = await work()
    return time.perf_counter() - started, outcome


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def more_replicas(url: str, count: int) -> Iterator[None]:
    """`count` more processes carrying jobs (`territory-service work`) on the bench database."""
    environment = os.environ | {"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "territory_service", "work"]
    processes = [subprocess.Popen(command, env=environment) for _ in range(count)]
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait()


async def one_setup(customers: int, replicas: int) -> None:
    url = await recreate_database()
    settle_heap()  # as `territory-service serve` does once the app is built
    settings = Settings(database_url=url)
    engine = create_engine(settings)
    session_factory = create_session_factory(engine)
    started = time.perf_counter()
    async with session_factory() as session, session.begin():
        territories = await fill(session, customers)
        first = await add_ruleset(session, territories, 1, moved=0)
        second = await add_ruleset(session, territories, 2, moved=REDIVIDED)
    filled = time.perf_counter() - started
    print(f"\n{replicas} replica(s) of {settings.job_workers} workers: {customers:,} customers, "
          f"{len(territories)} territories, filled in {filled:.1f} s")  # fmt: skip
    floor, _ = await timed(lambda: stream_only(session_factory, first.id))
    print(f"{'run':<34} {'wall s':>7} {'× stream':>9} {'customers/s':>12} {'changed':>9}")
    print(f"{'stream the facts only (floor)':<34} {floor:>7.2f} {1:>8.1f}× "
          f"{customers / floor:>12,.0f} {0:>9,}")  # fmt: skip
    with more_replicas(url, replicas - 1):
        for label, ruleset in (
            ("first activation (all new)", first),
            ("re-division (~20% move)", second),
            ("same rule set again", second),
        ):
            wall, outcome = await timed(lambda r=ruleset: activate(session_factory, settings, r.id))  # type: ignore[misc]
            print(f"{label:<34} {wall:>7.2f} {wall / floor:>8.1f}× "
                  f"{outcome['customers'] / wall:>12,.0f} {outcome['changed']:>9,}")  # fmt: skip
    async with session_factory() as session:
        owned = await session.execute(
            select(func.count()).select_from(Ownership).where(Ownership.owner_id.is_not(None))
        )
        print(f"customers with an owner: {owned.scalar_one():,}; peak RSS {peak_mb():.0f} MB")
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--replicas", type=int, nargs="+", default=[1, 2], help="processes sharing the job"
    )
    args = parser.parse_args()
    for replicas in args.replicas:
        await one_setup(args.customers, replicas)


if __name__ == "__main__":
    asyncio.run(main())
