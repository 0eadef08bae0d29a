"""Static checks of a rule set: rules that can never match, rules a higher-priority rule
always beats, and same-priority rules with different targets that can both match (with an
example customer that hits both).

Every finding is sound: a rule reported dead or never-matching really is, and an overlap comes
with facts that the engine itself confirms match both rules. Overlaps the construction cannot
exhibit are not reported.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from territory_service.engine.conditions import (
    Clause,
    Op,
    Predicate,
    condition_holds,
    is_number,
)
from territory_service.engine.index import WHOLE_LINE, Interval, intersect, interval_of
from territory_service.engine.predicates import value_key
from territory_service.engine.ruleset import Rule, RuleSetSpec


@dataclass(frozen=True)
class Finding:
    code: str  # never_matches | dead | overlap
    rule_ids: tuple[Any, ...]
    message: str
    example: dict[str, Any] | None = None


def analyse(spec: RuleSetSpec) -> list[Finding]:
    rules = sorted((r for r in spec.rules if r.enabled), key=lambda r: r.order)
    findings: list[Finding] = []
    live: list[Rule] = []
    for rule in rules:
        if not any(satisfiable(c) for c in rule.condition.clauses):
            findings.append(
                Finding("never_matches", (rule.id,), f"rule {rule.name!r} can never match")
            )
            continue
        cover = next((s for s in live if s.priority < rule.priority and covers(s, rule)), None)
        if cover is not None:
            findings.append(
                Finding(
                    "dead",
                    (rule.id, cover.id),
                    f"rule {rule.name!r} never wins: every customer it matches is taken first "
                    f"by {cover.name!r} (priority {cover.priority})",
                )
            )
        live.append(rule)
    for first, second in itertools.combinations(live, 2):
        if first.priority != second.priority or first.target == second.target:
            continue
        example = overlap_example(first, second)
        if example is not None:
            findings.append(
                Finding(
                    "overlap",
                    (first.id, second.id),
                    f"rules {first.name!r} and {second.name!r} share priority {first.priority}, "
                    "name different targets and can both match",
                    example,
                )
            )
    return findings


@dataclass
class _Constraints:
    """What one AND of predicates asks of each field."""

    equal: dict[str, frozenset[tuple[str, object]]]
    ranges: dict[str, Interval]
    null: set[str]
    not_null: set[str]
    tags_all: set[str]
    tags_any: list[frozenset[str]]
    tags_none: set[str]
    others: list[Predicate]


def _constraints(predicates: tuple[Predicate, ...]) -> _Constraints:
    c = _Constraints({}, {}, set(), set(), set(), [], set(), [])
    for p in predicates:
        if p.op in (Op.EQ, Op.IN):
            keys = frozenset(filter(None, map(value_key, [p.value] if p.op is Op.EQ else p.value)))
            c.equal[p.field] = c.equal[p.field] & keys if p.field in c.equal else keys
        elif (interval := interval_of(p)) is not None:
            c.ranges[p.field] = intersect(c.ranges.get(p.field, WHOLE_LINE), interval)
        elif p.op is Op.IS_NULL:
            c.null.add(p.field)
        elif p.op is Op.IS_NOT_NULL:
            c.not_null.add(p.field)
        elif p.op is Op.CONTAINS_ALL:
            c.tags_all |= set(p.value)
        elif p.op is Op.CONTAINS_ANY:
            c.tags_any.append(frozenset(p.value))
        elif p.op is Op.CONTAINS_NONE:
            c.tags_none |= set(p.value)
        else:
            c.others.append(p)
    return c


def _empty(interval: Interval) -> bool:
    low, low_in, high, high_in = interval
    return low > high or (low == high and not (low_in and high_in))


def satisfiable(clause: Clause) -> bool:
    """False only when no customer can satisfy the clause."""
    c = _constraints(clause.predicates)
    if any(not keys for keys in c.equal.values()):
        return False
    if any(_empty(interval) for interval in c.ranges.values()):
        return False
    positive = set(c.equal) | set(c.ranges) | c.not_null | {p.field for p in c.others}
    if c.null & positive:
        return False
    if c.tags_all & c.tags_none:
        return False
    return all(any_tags - c.tags_none for any_tags in c.tags_any)


def covers(stronger: Rule, weaker: Rule) -> bool:
    """Every customer `weaker` matches is matched by `stronger` (some clause of it)."""
    return all(
        any(_implies(clause, s) for s in stronger.condition.clauses)
        for clause in weaker.condition.clauses
        if satisfiable(clause)
    )


def _implies(clause: Clause, other: Clause) -> bool:
    """Whatever satisfies `clause` satisfies `other`."""
    return all(any(_predicate_implies(q, p) for q in clause.predicates) for p in other.predicates)


def _predicate_implies(q: Predicate, p: Predicate) -> bool:  # noqa: C901 (one case per pair)
    if q == p:
        return True
    if q.field != p.field:
        return False
    positive = q.op not in (Op.IS_NULL, Op.NEQ, Op.NOT_IN, Op.CONTAINS_NONE)
    if p.op is Op.IS_NOT_NULL:
        return positive
    if p.op in (Op.EQ, Op.IN) and q.op in (Op.EQ, Op.IN):
        wanted = _keys(p)
        return _keys(q) <= wanted
    if (target := interval_of(p)) is not None:
        if (source := interval_of(q)) is not None:
            return intersect(source, target) == source
        if q.op in (Op.EQ, Op.IN):
            values = [q.value] if q.op is Op.EQ else q.value
            return all(is_number(v) and _inside(v, target) for v in values)
    if p.op is Op.CONTAINS_ANY and q.op in (Op.CONTAINS_ALL, Op.CONTAINS_ANY):
        if q.op is Op.CONTAINS_ALL:
            return bool(set(q.value) & set(p.value))
        return set(q.value) <= set(p.value)
    if p.op is Op.CONTAINS_ALL and q.op is Op.CONTAINS_ALL:
        return set(p.value) <= set(q.value)
    return False


def _keys(p: Predicate) -> frozenset[tuple[str, object]]:
    return frozenset(filter(None, map(value_key, [p.value] if p.op is Op.EQ else p.value)))


def _inside(x: float, interval: Interval) -> bool:
    low, low_in, high, high_in = interval
    return (x > low or (low_in and x == low)) and (x < high or (high_in and x == high))


def overlap_example(first: Rule, second: Rule) -> dict[str, Any] | None:
    """Facts of a customer both rules match, checked with the engine; None if none is found."""
    for a, b in itertools.product(first.condition.clauses, second.condition.clauses):
        facts = _example(a.predicates + b.predicates)
        if facts is not None and all(
            condition_holds(rule.condition, facts) for rule in (first, second)
        ):
            return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in facts.items()}
    return None


def _example(predicates: tuple[Predicate, ...]) -> dict[str, Any] | None:
    c = _constraints(predicates)
    facts: dict[str, Any] = {}
    for field, keys in c.equal.items():
        if not keys:
            return None
        facts[field] = min(keys, key=repr)[1]
    for field, interval in c.ranges.items():
        if field not in facts:
            if _empty(interval):
                return None
            facts[field] = _point(interval)
    excluded: dict[str, list[Any]] = defaultdict(list)
    for p in c.others:
        if p.op is Op.STARTS_WITH and p.field not in facts:
            facts[p.field] = p.value + "示例"
        elif p.op in (Op.NEQ, Op.NOT_IN):
            excluded[p.field] += [p.value] if p.op is Op.NEQ else list(p.value)
    for field, values in excluded.items():
        if field not in facts:
            facts[field] = _other_than(values)
    for field in c.not_null:
        facts.setdefault(field, "示例")
    tags = set(c.tags_all)
    for any_tags in c.tags_any:
        if not any_tags & tags:
            choices = sorted(any_tags - c.tags_none)
            if not choices:
                return None
            tags.add(choices[0])
    facts["tags"] = frozenset(tags)
    for field in c.null:
        facts[field] = None
    return facts


def _point(interval: Interval) -> float:
    """A number inside a non-empty interval (the engine confirms it; at the very ends of the
    float range there may be none, and the example is then dropped)."""
    low, low_in, high, high_in = interval
    if low_in:
        return low
    if high_in:
        return high
    if low == -math.inf:
        return 0 if high > 0 else math.nextafter(high, -math.inf)
    if high == math.inf:
        return 0 if low < 0 else math.nextafter(low, math.inf)
    middle = low + (high - low) / 2
    return middle if low < middle < high else math.nextafter(low, math.inf)


def _other_than(values: list[Any]) -> Any:
    if all(is_number(v) for v in values):
        # A small int none of them equals: within every numeric domain the API accepts.
        return next(n for n in range(len(values) + 1) if n not in values)
    return "示例" + "".join(str(v) for v in values)[:20]
