"""Single-customer rule matching: the indexed engine against a plain first-match scan.

Run: `make bench` (or `.venv/bin/python -m bench.resolve_bench`). Both are timed in the same run
on the same rule sets and customers; the figure to read is the ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from territory_service.demo.catalog import INDUSTRIES, PROVINCES
from territory_service.engine.conditions import Clause, Condition, Op, Predicate
from territory_service.engine.facts import Facts
from territory_service.engine.ruleset import CompiledRuleSet, Match, Rule, RuleSetSpec

PROVINCE_NAMES = [province.name for province in PROVINCES]
INDUSTRY_NAMES = list(INDUSTRIES)
BANDS = [(0, 50), (50, 200), (200, 1000), (1000, 5000), (5000, 100_000)]
TIERS = ["A", "B", "C", "D"]
# Tags and how often a customer carries each (most carry none).
TAG_SHARES = {
    "strategic": 0.03,
    "key_account": 0.05,
    "partner": 0.10,
    "government": 0.05,
    "listed": 0.05,
    "new": 0.15,
    "open_deal": 0.20,
}
TAGS = list(TAG_SHARES)
# One rule in CARVE_OUT_EVERY is a carve-out (tags, tier, revenue) above the regional rules.
CARVE_OUT_EVERY = 50


def make_rules(count: int, rng: random.Random) -> RuleSetSpec:
    """Rules shaped like a real division: province x industry x size band at priorities 100-149,
    one carve-out in 50 (tags, tier, revenue) at priorities 10-16 above them, and a catch-all at
    the lowest priority."""
    rules: list[Rule] = []
    territory = uuid.UUID(int=1)
    combos = [
        (province, industry, band)
        for province in PROVINCE_NAMES
        for industry in INDUSTRY_NAMES
        for band in BANDS
    ]
    rng.shuffle(combos)
    for position in range(count - 1):
        if position % CARVE_OUT_EVERY == 0:
            predicates = (
                Predicate("tags", Op.CONTAINS_ANY, rng.sample(TAGS, 2)),
                Predicate("tier", Op.IN, rng.sample(TIERS, 2)),
                Predicate("annual_revenue", Op.GTE, rng.choice([1e7, 1e8, 1e9])),
            )
            priority = 10 + position % 7
        else:
            province, industry, (low, high) = combos[position % len(combos)]
            predicates = (
                Predicate("province", Op.EQ, province),
                Predicate("industry", Op.EQ, industry),
                Predicate("employees", Op.BETWEEN, [low, high + position // len(combos)]),
            )
            priority = 100 + position % 50
        rules.append(
            Rule(
                id=uuid.UUID(int=10_000 + position),
                name=f"rule {position}",
                priority=priority,
                condition=Condition((Clause(predicates),)),
                territory_id=territory,
                position=position,
            )
        )
    catch_all = Rule(
        uuid.UUID(int=9_999),
        "everyone else",
        10_000,
        Condition((Clause(()),)),
        territory,
        position=count,
    )
    return RuleSetSpec(1, (*rules, catch_all), territory)


def make_customer(rng: random.Random) -> dict[str, Any]:
    employees = int(rng.lognormvariate(4.5, 1.6))
    return {
        "province": rng.choice(PROVINCE_NAMES),
        "industry": rng.choice(INDUSTRY_NAMES),
        "employees": employees,
        "annual_revenue": employees * rng.uniform(2e5, 2e6),
        "tier": rng.choice(TIERS),
        "tags": frozenset(tag for tag, share in TAG_SHARES.items() if rng.random() < share),
    }


def median_microseconds(match: Callable[[Facts], Match], customers: list[dict[str, Any]]) -> float:
    samples = []
    for facts in customers:
        started = time.perf_counter_ns()
        match(facts)
        samples.append(time.perf_counter_ns() - started)
    return statistics.median(samples) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    args = parser.parse_args()
    rng = random.Random(20261123)
    customers = [make_customer(rng) for _ in range(args.customers)]
    print(f"single-customer match, median of {args.customers} customers")
    print(
        f"{'rules':>7} {'indexed µs':>11} {'scan µs':>9} {'scan / indexed':>15} {'compile ms':>11}"
    )
    for size in args.sizes:
        spec = make_rules(size, rng)
        started = time.perf_counter()
        compiled = CompiledRuleSet(spec)
        compile_ms = (time.perf_counter() - started) * 1000
        assert all(compiled.match(c) == compiled.match_by_scan(c) for c in customers[:500])
        indexed = median_microseconds(compiled.match, customers)
        scan = median_microseconds(compiled.match_by_scan, customers)
        print(
            f"{size:>7} {indexed:>11.2f} {scan:>9.1f} {scan / indexed:>14.1f}x {compile_ms:>11.1f}"
        )


if __name__ == "__main__":
    main()
