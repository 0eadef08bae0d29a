"""Conditions: an OR of ANDs of predicates, their static checks, and what they mean.

`holds` is the reference meaning of every operator; the compiled and indexed forms in
`compiled.py` and `index.py` must agree with it, and property-based tests prove they do.
Missing facts never match (only `is_null` holds for them), a value of the wrong kind never
matches, and evaluation never raises.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from territory_service.engine.facts import Facts, FieldKind, field_kind

MAX_CLAUSES = 50
MAX_PREDICATES = 20
MAX_LIST = 1000
MAX_TEXT = 200


class Op(enum.StrEnum):
    EQ = "eq"
    NEQ = "neq"
    IN = "in"
    NOT_IN = "not_in"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    BETWEEN = "between"
    STARTS_WITH = "starts_with"
    CONTAINS_ANY = "contains_any"
    CONTAINS_ALL = "contains_all"
    CONTAINS_NONE = "contains_none"
    IS_NULL = "is_null"
    IS_NOT_NULL = "is_not_null"


SCALAR_OPS = frozenset({Op.EQ, Op.NEQ, Op.IN, Op.NOT_IN, Op.IS_NULL, Op.IS_NOT_NULL})
RANGE_OPS = frozenset({Op.LT, Op.LTE, Op.GT, Op.GTE, Op.BETWEEN})
TAG_OPS = frozenset({Op.CONTAINS_ANY, Op.CONTAINS_ALL, Op.CONTAINS_NONE})
LIST_OPS = frozenset({Op.IN, Op.NOT_IN}) | TAG_OPS
NO_VALUE_OPS = frozenset({Op.IS_NULL, Op.IS_NOT_NULL})

OPS_BY_KIND: dict[FieldKind, frozenset[Op]] = {
    FieldKind.STRING: SCALAR_OPS | {Op.STARTS_WITH},
    FieldKind.NUMBER: SCALAR_OPS | RANGE_OPS,
    FieldKind.TAGS: TAG_OPS,
    FieldKind.ATTRIBUTE: SCALAR_OPS | RANGE_OPS | {Op.STARTS_WITH},
}


@dataclass(frozen=True)
class Predicate:
    field: str
    op: Op
    value: Any = None


@dataclass(frozen=True)
class Clause:
    """All predicates hold. An empty clause always holds (an explicit catch-all)."""

    predicates: tuple[Predicate, ...]


@dataclass(frozen=True)
class Condition:
    """At least one clause holds."""

    clauses: tuple[Clause, ...]


@dataclass(frozen=True)
class ConditionError:
    path: str  # e.g. "any_of[1].all_of[0].value"
    message: str


def is_number(value: object) -> bool:
    """A finite JSON number. Ints are compared exactly, never through a float, and an int too
    large for a float is still a number (`math.isfinite` would raise on it)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def same_kind(fact: object, value: object) -> bool:
    """Facts compare only with values of their own kind: text, number or boolean."""
    if isinstance(fact, bool) or isinstance(value, bool):
        return isinstance(fact, bool) and isinstance(value, bool)
    if isinstance(fact, str) or isinstance(value, str):
        return isinstance(fact, str) and isinstance(value, str)
    return is_number(fact) and is_number(value)


def holds(predicate: Predicate, facts: Facts) -> bool:
    """The reference meaning of one predicate for one customer."""
    fact = facts.get(predicate.field)
    op, value = predicate.op, predicate.value
    if op is Op.IS_NULL:
        return fact is None
    if fact is None:
        return False
    if op is Op.IS_NOT_NULL:
        return True
    if op in TAG_OPS:
        if not isinstance(fact, frozenset):
            return False
        wanted = set(value)
        if op is Op.CONTAINS_ANY:
            return bool(fact & wanted)
        if op is Op.CONTAINS_ALL:
            return wanted <= fact
        return not (fact & wanted)
    if op in (Op.IN, Op.NOT_IN):
        member = any(same_kind(fact, item) and fact == item for item in value)
        comparable = any(same_kind(fact, item) for item in value)
        return member if op is Op.IN else comparable and not member
    if op is Op.STARTS_WITH:
        return isinstance(fact, str) and isinstance(value, str) and fact.startswith(value)
    if op is Op.BETWEEN:
        low, high = value
        return is_number(fact) and low <= fact < high
    if not same_kind(fact, value):
        return False
    if op is Op.EQ:
        return bool(fact == value)
    if op is Op.NEQ:
        return bool(fact != value)
    if not is_number(fact):
        return False
    if op is Op.LT:
        return bool(fact < value)
    if op is Op.LTE:
        return bool(fact <= value)
    if op is Op.GT:
        return bool(fact > value)
    return bool(fact >= value)


def condition_holds(condition: Condition, facts: Facts) -> bool:
    return any(all(holds(p, facts) for p in clause.predicates) for clause in condition.clauses)


def check_condition(condition: Condition) -> list[ConditionError]:
    """Static checks on write: known fields, operators that fit them, values that fit both."""
    errors: list[ConditionError] = []
    if not condition.clauses:
        errors.append(
            ConditionError(
                "any_of",
                'an empty condition never matches; a catch-all is {"any_of": [{"all_of": []}]}',
            )
        )
    if len(condition.clauses) > MAX_CLAUSES:
        errors.append(ConditionError("any_of", f"at most {MAX_CLAUSES} clauses"))
    for c, clause in enumerate(condition.clauses):
        if len(clause.predicates) > MAX_PREDICATES:
            errors.append(
                ConditionError(f"any_of[{c}].all_of", f"at most {MAX_PREDICATES} predicates")
            )
        for p, predicate in enumerate(clause.predicates):
            where = f"any_of[{c}].all_of[{p}]"
            errors.extend(
                ConditionError(f"{where}.{part}", message)
                for part, message in _predicate_errors(predicate)
            )
    return errors


def _predicate_errors(predicate: Predicate) -> list[tuple[str, str]]:
    kind = field_kind(predicate.field)
    if kind is None:
        return [("field", f"no customer fact is called {predicate.field!r}")]
    if predicate.op not in OPS_BY_KIND[kind]:
        allowed = ", ".join(sorted(OPS_BY_KIND[kind]))
        return [("op", f"{predicate.op} does not apply to {predicate.field}; use {allowed}")]
    message = _value_error(predicate, kind)
    return [] if message is None else [("value", message)]


def _value_error(predicate: Predicate, kind: FieldKind) -> str | None:
    op, value = predicate.op, predicate.value
    if op in NO_VALUE_OPS:
        return None if value is None else f"{op} takes no value"
    if op in LIST_OPS:
        if not isinstance(value, list | tuple) or not value:
            return "a non-empty list"
        if len(value) > MAX_LIST:
            return f"at most {MAX_LIST} values"
        return next(filter(None, (_scalar_error(item, kind, op) for item in value)), None)
    if op is Op.BETWEEN:
        if not isinstance(value, list | tuple) or len(value) != 2:
            return "[low, high]: two numbers"
        if not all(is_number(bound) for bound in value):
            return "[low, high]: two numbers"
        return None if value[0] < value[1] else "low must be below high (the range is [low, high))"
    return _scalar_error(value, kind, op)


def _scalar_error(value: object, kind: FieldKind, op: Op) -> str | None:
    if op in TAG_OPS:
        ok = isinstance(value, str) and 0 < len(value) <= 64
        return None if ok else "tags are non-empty strings of at most 64 characters"
    if op in RANGE_OPS or kind is FieldKind.NUMBER:
        return None if is_number(value) else "a number"
    if op is Op.STARTS_WITH or kind is FieldKind.STRING:
        if not isinstance(value, str):
            return "a string"
        return None if len(value) <= MAX_TEXT else f"at most {MAX_TEXT} characters"
    if isinstance(value, str):
        return None if len(value) <= MAX_TEXT else f"at most {MAX_TEXT} characters"
    return None if is_number(value) or isinstance(value, bool) else "a string, number or boolean"
