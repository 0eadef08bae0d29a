"""The static checks behind `validate` are sound: what they report is true of every customer."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from territory_service.engine.analysis import analyse, covers, overlap_example, satisfiable
from territory_service.engine.conditions import Clause, Condition, Op, Predicate, condition_holds
from territory_service.engine.ruleset import Rule, RuleSetSpec
from tests.unit.engine_strategies import clauses, conditions, customers_for

T1, T2 = uuid.UUID(int=1), uuid.UUID(int=2)


def rule(n: int, condition: Condition, priority: int = 1, territory: uuid.UUID = T1) -> Rule:
    return Rule(uuid.UUID(int=n), f"r{n}", priority, condition, territory, position=n)


@settings(max_examples=600)
@given(clauses, st.data())
def test_a_clause_called_unsatisfiable_matches_no_customer(
    clause: Clause, data: st.DataObject
) -> None:
    for facts in data.draw(customers_for(Condition((clause,)), max_size=5)):
        if all(p_holds(p, facts) for p in clause.predicates):
            assert satisfiable(clause)


def p_holds(predicate: Predicate, facts: dict[str, Any]) -> bool:
    return condition_holds(Condition((Clause((predicate,)),)), facts)


@settings(max_examples=600)
@given(conditions, conditions, st.data())
def test_a_covered_rule_matches_only_customers_its_cover_matches(
    strong: Condition, weak: Condition, data: st.DataObject
) -> None:
    if covers(rule(1, strong), rule(2, weak)):
        for facts in data.draw(customers_for(strong, weak, max_size=10)):
            assert not condition_holds(weak, facts) or condition_holds(strong, facts)


@settings(max_examples=500)
@given(conditions, conditions)
def test_an_overlap_example_matches_both_rules(a: Condition, b: Condition) -> None:
    example = overlap_example(rule(1, a), rule(2, b, territory=T2))
    if example is not None:
        facts = {k: frozenset(v) if k == "tags" else v for k, v in example.items()}
        assert condition_holds(a, facts)
        assert condition_holds(b, facts)


def where(field: str, op: Op, value: object = None) -> Condition:
    return Condition((Clause((Predicate(field, op, value),)),))


def test_validate_finds_contradictions_dead_rules_and_ties() -> None:
    impossible = Condition(
        (Clause((Predicate("employees", Op.GTE, 100), Predicate("employees", Op.LT, 50))),)
    )
    broad = where("province", Op.IN, ["上海", "江苏"])
    narrow = where("province", Op.EQ, "上海")
    other = where("tags", Op.CONTAINS_ANY, ["strategic"])
    spec = RuleSetSpec(
        1,
        (
            rule(1, impossible),
            rule(2, broad, priority=1),
            rule(3, narrow, priority=5),
            rule(4, other, priority=1, territory=T2),
        ),
        T1,
    )

    findings = {(f.code, f.rule_ids[0]) for f in analyse(spec)}

    assert findings == {
        ("never_matches", uuid.UUID(int=1)),
        ("dead", uuid.UUID(int=3)),
        ("overlap", uuid.UUID(int=2)),
    }
