"""Rule conditions as the API shows them: a flat OR of ANDs, with a discriminated union on `op`.

Flat on purpose: OpenAPI client generators break on recursive schemas. The shape is checked
here; what the fields mean (known fields, operators that fit them) is checked by the engine's
`check_condition`, whose errors point at the offending predicate.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StringConstraints

from territory_service.engine import conditions as engine
from territory_service.schemas import (
    NUMBER_RANGE,
    InputModel,
    NotBlank,
    Number,
    OneError,
    Storable,
    Tag,
)

FieldName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=80),
    NotBlank,
    Field(
        description="A customer fact (`province`, `employees`, `tags`, ...) or `attributes.<key>`."
    ),
]
Text = Annotated[str, StringConstraints(max_length=engine.MAX_TEXT), Storable]
Scalar = Annotated[
    Text | Number | StrictBool,
    OneError(
        "scalar",
        f"must be text of at most {engine.MAX_TEXT} characters (no U+0000), a boolean, "
        f"or {NUMBER_RANGE}",
    ),
]


class Comparison(InputModel):
    """`eq` / `neq`: the fact equals (or differs from) a value of the same kind."""

    field: FieldName
    op: Literal["eq", "neq"]
    value: Scalar


class Membership(InputModel):
    """`in` / `not_in`: the fact is (or is not) one of the values."""

    field: FieldName
    op: Literal["in", "not_in"]
    value: list[Scalar] = Field(min_length=1, max_length=engine.MAX_LIST)


class Bound(InputModel):
    """`lt`, `lte`, `gt`, `gte`: a numeric fact against a bound."""

    field: FieldName
    op: Literal["lt", "lte", "gt", "gte"]
    value: Number


class Between(InputModel):
    """`between`: low <= fact < high (half-open)."""

    field: FieldName
    op: Literal["between"]
    value: tuple[Number, Number]


class StartsWith(InputModel):
    field: FieldName
    op: Literal["starts_with"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=engine.MAX_TEXT), NotBlank]


class TagTest(InputModel):
    """`contains_any`, `contains_all`, `contains_none`: on `tags`."""

    field: FieldName
    op: Literal["contains_any", "contains_all", "contains_none"]
    value: list[Tag] = Field(min_length=1, max_length=engine.MAX_LIST)


class NullTest(InputModel):
    """`is_null` / `is_not_null`: whether the fact is known. Takes no value."""

    field: FieldName
    op: Literal["is_null", "is_not_null"]


Predicate = Annotated[
    Comparison | Membership | Bound | Between | StartsWith | TagTest | NullTest,
    Field(discriminator="op"),
]


class AllOf(InputModel):
    all_of: list[Predicate] = Field(
        max_length=engine.MAX_PREDICATES,
        description="Every predicate holds. An empty list always holds (a catch-all).",
    )


class ConditionIn(InputModel):
    any_of: list[AllOf] = Field(
        max_length=engine.MAX_CLAUSES,
        description='At least one clause holds. `{"any_of": []}` is refused; a catch-all '
        'is `{"any_of": [{"all_of": []}]}`.',
    )


def to_engine(condition: ConditionIn | dict[str, object]) -> engine.Condition:
    """The engine's form of a validated API condition (or of its stored JSON)."""
    data = condition if isinstance(condition, dict) else condition.model_dump()
    return engine.Condition(
        tuple(
            engine.Clause(
                tuple(
                    engine.Predicate(
                        p["field"],
                        engine.Op(p["op"]),
                        list(p["value"])
                        if isinstance(p.get("value"), list | tuple)
                        else p.get("value"),
                    )
                    for p in clause["all_of"]
                )
            )
            for clause in data["any_of"]  # type: ignore[union-attr]
        )
    )
