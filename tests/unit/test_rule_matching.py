"""The indexed engine gives the specification's answer, for any rule set and any customer."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from territory_service.engine.conditions import (
    Clause,
    Condition,
    Op,
    Predicate,
    check_condition,
    holds,
)
from territory_service.engine.predicates import compile_predicate
from territory_service.engine.ruleset import CompiledRuleSet, Match, Rule, RuleSetSpec
from tests.unit.engine_strategies import (
    MAX_SAFE_INTEGER,
    customer_facts,
    numbers_in,
    predicates,
    rulesets,
    rulesets_and_customers,
)


def matches(rule: Rule, facts: dict[str, Any]) -> bool:
    """A rule matches when every predicate of some clause holds."""
    return rule.enabled and any(
        all(holds(predicate, facts) for predicate in clause.predicates)
        for clause in rule.condition.clauses
    )


def precedence(rule: Rule) -> tuple[int, int, int]:
    """DESIGN §3 and `RuleOut.position`, stated here on their own rather than taken from the
    engine: the lowest priority wins, then the earliest created (lowest position), then the
    lowest id (UUIDs order by their number and by their text alike)."""
    return (rule.priority, rule.position, rule.id.int)


def reference_matches(spec: RuleSetSpec, facts: dict[str, Any]) -> tuple[Rule, ...]:
    """Every enabled rule that matches, best first, read literally from the specification."""
    return tuple(sorted((r for r in spec.rules if matches(r, facts)), key=precedence))


def reference_match(spec: RuleSetSpec, facts: dict[str, Any]) -> Match:
    """The matching rules at the winning (lowest) priority, best first."""
    found = reference_matches(spec, facts)
    return Match(tuple(r for r in found if r.priority == found[0].priority) if found else ())


@settings(max_examples=200)
@given(rulesets_and_customers())
def test_indexed_engine_equals_the_reference_evaluator(
    case: tuple[RuleSetSpec, list[dict[str, Any]]],
) -> None:
    spec, customers = case
    compiled = CompiledRuleSet(spec)
    for facts in customers:
        expected = reference_match(spec, facts)
        assert compiled.match(facts) == expected
        assert compiled.match_by_scan(facts) == expected
        assert compiled.all_matches(facts) == reference_matches(spec, facts)


def as_row(facts: dict[str, Any], names: list[str]) -> list[Any]:
    """The facts as a bulk read delivers them: by position, tags as a list or None."""
    return [(sorted(facts[n]) or None) if n == "tags" else facts[n] for n in names]


@settings(max_examples=150)
@given(rulesets_and_customers())
def test_matching_rows_by_position_gives_the_reference_answer(
    case: tuple[RuleSetSpec, list[dict[str, Any]]],
) -> None:
    spec, customers = case
    compiled = CompiledRuleSet(spec)
    names = sorted(customers[0])
    match = compiled.row_matcher({name: position for position, name in enumerate(names)})
    for facts in customers * 2:  # the second time, from what the matcher remembers
        found = match(as_row(facts, names))
        # None: a candidate needs more than the index; the caller matches the facts instead.
        assert found is None or found == reference_match(spec, facts)


@given(st.lists(customer_facts(), min_size=1, max_size=50))
def test_a_rule_set_the_index_decides_alone_matches_every_row(
    customers: list[dict[str, Any]],
) -> None:
    territory = uuid.uuid4()
    conditions = [
        (1, [Predicate("tags", Op.CONTAINS_ANY, ["key"])]),
        (2, [Predicate("province", Op.IN, ["上海", "江苏"]), Predicate("employees", Op.GTE, 50)]),
        (2, [Predicate("industry", Op.EQ, "retail")]),
    ]
    rules = tuple(
        Rule(uuid.uuid4(), f"r{n}", priority, Condition((Clause(tuple(where)),)), territory)
        for n, (priority, where) in enumerate(conditions)
    )
    spec = RuleSetSpec(1, rules, territory)
    names = sorted(customers[0])
    match = CompiledRuleSet(spec).row_matcher({name: i for i, name in enumerate(names)})
    for facts in customers:
        assert match(as_row(facts, names)) == reference_match(spec, facts)


@settings(max_examples=600)
@given(predicates, st.data())
def test_a_compiled_predicate_means_what_the_reference_says(
    predicate: Predicate, data: st.DataObject
) -> None:
    near = numbers_in([Condition((Clause((predicate,)),))])
    facts = data.draw(customer_facts(near))
    assert compile_predicate(predicate)(facts) == holds(predicate, facts)


@given(rulesets())
def test_generated_rule_sets_pass_the_static_checks(spec: RuleSetSpec) -> None:
    # Guards the strategies: the differential test must run on conditions the API accepts.
    for rule in spec.rules:
        assert check_condition(rule.condition) == []


CATCH_ALL = Condition((Clause(()),))


def listed(*rules: Rule) -> CompiledRuleSet:
    return CompiledRuleSet(RuleSetSpec(1, rules, uuid.UUID(int=1)))


def ranked(priority: int, position: int, id_: int) -> Rule:
    territory = uuid.UUID(int=id_)  # a target of its own: every tie is a real one
    name = f"p{priority}/{position}/{id_}"
    return Rule(uuid.UUID(int=id_), name, priority, CATCH_ALL, territory, position=position)


def test_the_earliest_created_rule_leads_a_tie_whatever_its_id() -> None:
    late_small_id, early_big_id = ranked(5, 2, 1), ranked(5, 1, 9)
    assert listed(late_small_id, early_big_id).match({}).top == (early_big_id, late_small_id)


def test_the_lower_priority_wins_over_the_earlier_created() -> None:
    early, better = ranked(5, 1, 1), ranked(4, 2, 2)
    assert listed(early, better).match({}).top == (better,)
    assert listed(early, better).all_matches({}) == (better, early)


def test_rules_created_at_one_position_are_ordered_by_id() -> None:
    big, small = ranked(5, 1, 9), ranked(5, 1, 1)
    assert listed(big, small).match({}).top == (small, big)


MAX = MAX_SAFE_INTEGER


@pytest.mark.parametrize(
    ("op", "value", "fact", "expected"),
    [
        (Op.LTE, MAX, MAX, True),
        (Op.LT, MAX, MAX, False),
        (Op.LT, MAX, MAX - 1, True),
        (Op.GT, MAX - 1, MAX, True),
        (Op.GTE, MAX, MAX - 1, False),
        (Op.GTE, -MAX, -MAX, True),
        (Op.GT, -MAX, -(MAX - 1), True),
        (Op.LT, MAX, 2.0**53, False),
        (Op.LTE, 10**15 + 1, 10**15 + 1, True),
        (Op.GT, 10**15, 10**15 + 1, True),
        (Op.LT, 0.5, 0, True),
        (Op.GTE, 0.5, 0, False),
        (Op.GT, 0, 5e-324, True),
        (Op.BETWEEN, [MAX - 1, MAX], MAX, False),
        (Op.BETWEEN, [MAX - 1, MAX], float(MAX - 1), True),
        (Op.BETWEEN, [-MAX, -(MAX - 1)], -MAX, True),
        (Op.EQ, MAX, float(MAX), True),
        (Op.EQ, MAX, MAX - 1, False),
        (Op.EQ, 2.0**53, MAX, False),
        (Op.IN, [MAX, 0.5], MAX, True),
        (Op.IN, [MAX - 1], MAX, False),
        (Op.NOT_IN, [MAX - 1], MAX, True),
        (Op.NEQ, -MAX, -float(MAX), False),
    ],
)
def test_numbers_compare_exactly_across_the_whole_domain(
    op: Op, value: object, fact: float, expected: bool
) -> None:
    predicate = Predicate("attributes.size", op, value)
    rule = Rule(uuid.UUID(int=7), "r", 1, Condition((Clause((predicate,)),)), uuid.UUID(int=2))
    engine, facts = listed(rule), {"attributes.size": fact}
    assert check_condition(rule.condition) == []
    assert holds(predicate, facts) is expected
    assert compile_predicate(predicate)(facts) is expected
    assert engine.match(facts).top == ((rule,) if expected else ())
    row = engine.row_matcher({"attributes.size": 0})([fact])
    assert row is None or row.top == ((rule,) if expected else ())
