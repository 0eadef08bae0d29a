"""Hypothesis strategies for rule sets and customers, crowded on purpose: few text values, so
rules collide and tie, and customers' numbers drawn next to the rules' own, so they sit exactly
on (and a hair either side of) range bounds and listed values.

Numbers span the whole domain the API accepts: JSON numbers as IEEE-754 doubles, ints only
within ±(2**53 - 1), floats finite; ints and floats mix on both sides of every comparison.
Rule ids, positions and the order rules are listed in are drawn independently, so nothing but
the stated precedence (priority, then position, then id) can order them.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import strategies as st

from territory_service.engine.conditions import Clause, Condition, Op, Predicate
from territory_service.engine.ruleset import Rule, RuleSetSpec, TiePolicy

PROVINCES = ["上海", "江苏", "浙江", "广东"]
INDUSTRIES = ["manufacturing", "retail", "finance"]
TIERS = ["A", "B", "C"]
TAGS = ["strategic", "key", "partner", "new"]
TERRITORIES = [uuid.UUID(int=i) for i in range(1, 5)]
OWNERS = [uuid.UUID(int=i) for i in range(100, 103)]

STRING_FIELDS = {"province": PROVINCES, "industry": INDUSTRIES, "tier": TIERS}
NUMBER_FIELDS = ["employees", "potential_score", "attributes.size"]

MAX_SAFE_INTEGER = 2**53 - 1
EDGE_NUMBERS: tuple[int | float, ...] = (
    0,
    -0.0,
    1,
    -1,
    0.5,
    10,
    50,
    100,
    1000,
    MAX_SAFE_INTEGER,
    MAX_SAFE_INTEGER - 1,
    -MAX_SAFE_INTEGER,
    -(MAX_SAFE_INTEGER - 1),
    float(MAX_SAFE_INTEGER),
    -float(MAX_SAFE_INTEGER),
    2.0**53,  # the first float past the ints: equal to no allowed int
    -(2.0**53),
    2**52 + 1,
    2**52 - 0.5,
    10**15 + 1,  # 16 digits: lost by anything that keeps 15
    sys.float_info.max,
    -sys.float_info.max,
    5e-324,
    -5e-324,
)

numbers: st.SearchStrategy[int | float] = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False),
)
attribute_values = st.one_of(st.sampled_from(["direct", "partner"]), st.booleans(), numbers)


def neighbours(number: int | float) -> list[int | float]:
    """The number, the same value in the other type, and the closest values either side."""
    found: list[int | float] = [number]
    if isinstance(number, int):
        found += [n for n in (number - 1, number + 1) if abs(n) <= MAX_SAFE_INTEGER]
        found.append(float(number))
    else:
        found += [math.nextafter(number, -math.inf), math.nextafter(number, math.inf)]
        if number.is_integer() and abs(number) <= MAX_SAFE_INTEGER:
            found.append(int(number))
    return [n for n in found if math.isfinite(n)]


def numbers_in(conditions: Iterable[Condition]) -> list[int | float]:
    """Every number a condition names, with its neighbours."""
    found: list[int | float] = []
    for condition in conditions:
        for clause in condition.clauses:
            for predicate in clause.predicates:
                values = predicate.value if isinstance(predicate.value, list) else [predicate.value]
                for value in values:
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        found += neighbours(value)
    return found


def _numbers_near(near: Sequence[int | float]) -> st.SearchStrategy[int | float]:
    if not near:
        return numbers
    close = st.sampled_from(near)
    return st.one_of(close, close, numbers)


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
    # unique=True compares by ==, so 1 and 1.0 are never both drawn: low < high strictly.
    low, high = sorted(draw(st.lists(numbers, min_size=2, max_size=2, unique=True)))
    return Predicate(field, Op.BETWEEN, [low, high])


def _number_predicate(field: str) -> st.SearchStrategy[Predicate]:
    return st.one_of(
        st.builds(
            Predicate,
            st.just(field),
            st.sampled_from([Op.LT, Op.LTE, Op.GT, Op.GTE, Op.EQ, Op.NEQ]),
            numbers,
        ),
        st.builds(
            Predicate,
            st.just(field),
            st.sampled_from([Op.IN, Op.NOT_IN]),
            st.lists(numbers, min_size=1, max_size=3),
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
    ids = draw(st.lists(st.uuids(), min_size=count, max_size=count, unique=True))
    # Creation order is a shuffle, unrelated to the ids; repeated positions make id decide.
    positions = draw(
        st.one_of(
            st.permutations(range(count)),
            st.lists(st.integers(0, count), min_size=count, max_size=count),
        )
    )
    rules = tuple(
        Rule(
            id=ids[i],
            name=f"r{i}",
            priority=draw(st.integers(0, 4)),
            condition=draw(conditions),
            territory_id=draw(st.sampled_from(TERRITORIES)),
            owner_id=draw(st.one_of(st.none(), st.sampled_from(OWNERS))),
            enabled=draw(st.sampled_from([True, True, True, False])),
            position=positions[i],
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
def customer_facts(draw: st.DrawFn, near: Sequence[int | float] = ()) -> dict[str, Any]:
    """A customer; its numbers mostly from `near` (see `numbers_in`) when given."""
    number = _numbers_near(near)
    facts: dict[str, Any] = {
        field: draw(_maybe(st.sampled_from(pool))) for field, pool in STRING_FIELDS.items()
    }
    facts["employees"] = draw(_maybe(number))
    facts["potential_score"] = draw(_maybe(number))
    facts["attributes.size"] = draw(_maybe(st.one_of(number, st.sampled_from(["big", True]))))
    facts["attributes.channel"] = draw(_maybe(st.one_of(attribute_values, number)))
    facts["tags"] = frozenset(draw(st.lists(st.sampled_from(TAGS), max_size=3)))
    return facts


def customers_for(
    *conditions: Condition, min_size: int = 1, max_size: int = 20
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Customers whose numbers sit on and beside the ones the conditions name."""
    near = numbers_in(conditions)
    return st.lists(customer_facts(near), min_size=min_size, max_size=max_size)


@st.composite
def rulesets_and_customers(
    draw: st.DrawFn, max_customers: int = 20
) -> tuple[RuleSetSpec, list[dict[str, Any]]]:
    spec = draw(rulesets())
    customers = draw(
        customers_for(*(rule.condition for rule in spec.rules), max_size=max_customers)
    )
    return spec, customers
