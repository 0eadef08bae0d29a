"""Hypothesis strategies for rule sets and customers, crowded on purpose: few values, so rules
collide, tie and sit exactly on each other's range bounds."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st

from territory_service.rules.conditions import Clause, Condition, Op, Predicate
from territory_service.rules.ruleset import Rule, RuleSetSpec, TiePolicy

PROVINCES = ["上海", "江苏", "浙江", "广东"]
INDUSTRIES = ["manufacturing", "retail", "finance"]
TIERS = ["A", "B", "C"]
TAGS = ["strategic", "key", "partner", "new"]
BOUNDS = [0, 10, 50, 100, 1000]
TERRITORIES = [uuid.UUID(int=i) for i in range(1, 5)]
OWNERS = [uuid.UUID(int=i) for i in range(100, 103)]

STRING_FIELDS = {"province": PROVINCES, "industry": INDUSTRIES, "tier": TIERS}
NUMBER_FIELDS = ["employees", "potential_score", "attributes.size"]

numbers = st.one_of(st.sampled_from(BOUNDS), st.integers(-5, 1100), st.floats(-5, 1100))
attribute_values = st.one_of(
    st.sampled_from(["direct", "partner"]), st.booleans(), st.sampled_from(BOUNDS)
)


def _string_predicate(field: str, pool: list[str]) -> st.SearchStrategy[Predicate]:
    return st.one_of(
        st.builds(
            Predicate, st.just(field), st.sampled_from([Op.EQ, Op.NEQ]), st.sampled_from(pool)
        ),
        st.builds(
            Predicate,
            st.just(field),
            st.sampled_from([Op.IN, Op.NOT_IN]),
            st.lists(st.sampled_from(pool), min_size=1, max_size=3),
        ),
        st.builds(
            Predicate,
            st.just(field),
            st.just(Op.STARTS_WITH),
            st.sampled_from(["上", "A", "re", "江"]),
        ),
        st.builds(Predicate, st.just(field), st.sampled_from([Op.IS_NULL, Op.IS_NOT_NULL])),
    )


@st.composite
def _between(draw: st.DrawFn, field: str) -> Predicate:
    low, high = sorted(draw(st.lists(st.sampled_from(BOUNDS), min_size=2, max_size=2, unique=True)))
    return Predicate(field, Op.BETWEEN, [low, high])


def _number_predicate(field: str) -> st.SearchStrategy[Predicate]:
    return st.one_of(
        st.builds(
            Predicate,
            st.just(field),
            st.sampled_from([Op.LT, Op.LTE, Op.GT, Op.GTE, Op.EQ, Op.NEQ]),
            st.sampled_from(BOUNDS),
        ),
        st.builds(
            Predicate,
            st.just(field),
            st.sampled_from([Op.IN, Op.NOT_IN]),
            st.lists(st.sampled_from(BOUNDS), min_size=1, max_size=3),
        ),
        _between(field),
        st.builds(Predicate, st.just(field), st.sampled_from([Op.IS_NULL, Op.IS_NOT_NULL])),
    )


predicates = st.one_of(
    *(_string_predicate(field, pool) for field, pool in STRING_FIELDS.items()),
    *(_number_predicate(field) for field in NUMBER_FIELDS),
    st.builds(
        Predicate,
        st.just("tags"),
        st.sampled_from([Op.CONTAINS_ANY, Op.CONTAINS_ALL, Op.CONTAINS_NONE]),
        st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
    ),
    st.builds(
        Predicate,
        st.just("attributes.channel"),
        st.sampled_from([Op.EQ, Op.NEQ]),
        attribute_values,
    ),
)

clauses = st.builds(Clause, st.lists(predicates, max_size=3).map(tuple))
conditions = st.builds(Condition, st.lists(clauses, min_size=1, max_size=3).map(tuple))


@st.composite
def rulesets(draw: st.DrawFn, max_rules: int = 25) -> RuleSetSpec:
    count = draw(st.integers(0, max_rules))
    rules = tuple(
        Rule(
            id=uuid.UUID(int=1000 + i),
            name=f"r{i}",
            priority=draw(st.integers(0, 4)),
            condition=draw(conditions),
            territory_id=draw(st.sampled_from(TERRITORIES)),
            owner_id=draw(st.one_of(st.none(), st.sampled_from(OWNERS))),
            enabled=draw(st.sampled_from([True, True, True, False])),
            position=i,
        )
        for i in range(count)
    )
    return RuleSetSpec(
        version=draw(st.integers(1, 9)),
        rules=rules,
        default_territory_id=TERRITORIES[0],
        tie_policy=draw(st.sampled_from(list(TiePolicy))),
    )


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def customer_facts(draw: st.DrawFn) -> dict[str, Any]:
    facts: dict[str, Any] = {
        field: draw(_maybe(st.sampled_from(pool))) for field, pool in STRING_FIELDS.items()
    }
    facts["employees"] = draw(_maybe(numbers))
    facts["potential_score"] = draw(_maybe(st.sampled_from(BOUNDS)))
    facts["attributes.size"] = draw(_maybe(st.one_of(numbers, st.sampled_from(["big", True]))))
    facts["attributes.channel"] = draw(_maybe(attribute_values))
    facts["tags"] = frozenset(draw(st.lists(st.sampled_from(TAGS), max_size=3)))
    return facts
