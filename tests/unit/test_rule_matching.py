"""The indexed engine gives the specification's answer, for any rule set and any customer."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from territory_service.rules.compiled import compile_predicate
from territory_service.rules.conditions import Predicate, check_condition, holds
from territory_service.rules.ruleset import (
    CompiledRuleSet,
    RuleSetSpec,
    reference_match,
    reference_matches,
)
from tests.unit.rules_strategies import customer_facts, predicates, rulesets


@settings(max_examples=400)
@given(rulesets(), st.lists(customer_facts(), min_size=1, max_size=20))
def test_indexed_engine_equals_the_reference_evaluator(
    spec: RuleSetSpec, customers: list[dict[str, Any]]
) -> None:
    compiled = CompiledRuleSet(spec)
    for facts in customers:
        expected = reference_match(spec, facts)
        assert compiled.match(facts) == expected
        assert compiled.match_by_scan(facts) == expected
        assert compiled.all_matches(facts) == reference_matches(spec, facts)


@settings(max_examples=1000)
@given(predicates, customer_facts())
def test_a_compiled_predicate_means_what_the_reference_says(
    predicate: Predicate, facts: dict[str, Any]
) -> None:
    assert compile_predicate(predicate)(facts) == holds(predicate, facts)


@given(rulesets())
def test_generated_rule_sets_pass_the_static_checks(spec: RuleSetSpec) -> None:
    # Guards the strategies: the differential test must run on conditions the API accepts.
    for rule in spec.rules:
        assert check_condition(rule.condition) == []
