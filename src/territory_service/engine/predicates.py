"""Predicates compiled into closures: the same meaning as `conditions.holds`, decided once."""

from __future__ import annotations

from collections.abc import Callable

from territory_service.engine.conditions import (
    TAG_OPS,
    Clause,
    Op,
    Predicate,
    is_number,
    same_kind,
)
from territory_service.engine.facts import Facts

Test = Callable[[Facts], bool]


def value_key(value: object) -> tuple[str, object] | None:
    """A hashable key under which equal values of one kind meet (1 and 1.0 do, 1 and True don't).

    A number is its own key: Python's int and float compare and hash exactly across the two
    types, where `float(n)` would merge distinct ints beyond 2**53."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, str):
        return ("s", value)
    if is_number(value):
        return ("n", value)
    return None


def compile_predicate(predicate: Predicate) -> Test:  # noqa: C901 (one branch per operator)
    field, op, value = predicate.field, predicate.op, predicate.value
    if op is Op.IS_NULL:
        return lambda facts: facts.get(field) is None
    if op is Op.IS_NOT_NULL:
        return lambda facts: facts.get(field) is not None
    if op in TAG_OPS:
        wanted = frozenset(value)
        if op is Op.CONTAINS_ANY:
            return lambda facts: (tags := _tags(facts, field)) is not None and bool(tags & wanted)
        if op is Op.CONTAINS_ALL:
            return lambda facts: (tags := _tags(facts, field)) is not None and wanted <= tags
        return lambda facts: (tags := _tags(facts, field)) is not None and not (tags & wanted)
    if op in (Op.IN, Op.NOT_IN):
        keys = frozenset(filter(None, map(value_key, value)))
        kinds = frozenset(key[0] for key in keys)
        if op is Op.IN:
            return lambda facts: value_key(facts.get(field)) in keys
        return lambda facts: (
            (k := value_key(facts.get(field))) is not None and (k[0] in kinds and k not in keys)
        )
    if op is Op.STARTS_WITH:
        return lambda facts: isinstance(f := facts.get(field), str) and f.startswith(value)
    if op is Op.BETWEEN:
        low, high = value
        return lambda facts: is_number(f := facts.get(field)) and low <= f < high
    if op is Op.EQ:
        key = value_key(value)
        return lambda facts: value_key(facts.get(field)) == key
    if op is Op.NEQ:
        return lambda facts: (
            (f := facts.get(field)) is not None and same_kind(f, value) and f != value
        )
    compare = _COMPARISONS[op]
    return lambda facts: is_number(f := facts.get(field)) and compare(f, value)  # type: ignore[arg-type]


def _tags(facts: Facts, field: str) -> frozenset[str] | None:
    tags = facts.get(field)
    return tags if isinstance(tags, frozenset) else None


_COMPARISONS: dict[Op, Callable[[float, float], bool]] = {
    Op.LT: lambda fact, bound: fact < bound,
    Op.LTE: lambda fact, bound: fact <= bound,
    Op.GT: lambda fact, bound: fact > bound,
    Op.GTE: lambda fact, bound: fact >= bound,
}


def compile_clause(clause: Clause) -> Test:
    tests = tuple(compile_predicate(predicate) for predicate in clause.predicates)
    if not tests:
        return lambda _facts: True
    if len(tests) == 1:
        return tests[0]
    return lambda facts: all(test(facts) for test in tests)
