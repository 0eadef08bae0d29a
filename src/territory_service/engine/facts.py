"""The customer facts rules can read, and what kind of value each holds."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any

ATTRIBUTE_PREFIX = "attributes."
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class FieldKind(enum.Enum):
    STRING = "string"
    NUMBER = "number"
    TAGS = "tags"
    # A custom attribute: string, number or boolean, known only when a customer is evaluated.
    ATTRIBUTE = "attribute"


FIELDS: dict[str, FieldKind] = {
    "name": FieldKind.STRING,
    "source": FieldKind.STRING,
    "external_id": FieldKind.STRING,
    "country": FieldKind.STRING,
    "province": FieldKind.STRING,
    "city": FieldKind.STRING,
    "district": FieldKind.STRING,
    "industry": FieldKind.STRING,
    "tier": FieldKind.STRING,
    "registration_id": FieldKind.STRING,
    "employees": FieldKind.NUMBER,
    "annual_revenue": FieldKind.NUMBER,
    "potential_score": FieldKind.NUMBER,
    "tags": FieldKind.TAGS,
}

Facts = Mapping[str, Any]
"""A customer's facts by field name; tags as a frozenset, attributes as `attributes.<key>`."""


def field_kind(field: str) -> FieldKind | None:
    """The kind of a rule field, or None when no customer fact has that name."""
    if field.startswith(ATTRIBUTE_PREFIX):
        key = field[len(ATTRIBUTE_PREFIX) :]
        return FieldKind.ATTRIBUTE if _ATTRIBUTE_KEY.match(key) else None
    return FIELDS.get(field)


def facts_of(customer: Mapping[str, Any]) -> dict[str, Any]:
    """Facts as rules see them, from a customer's stored or submitted fields."""
    facts = {name: customer.get(name) for name in FIELDS if name != "tags"}
    facts["tags"] = frozenset(customer.get("tags") or ())
    for key, value in (customer.get("attributes") or {}).items():
        facts[ATTRIBUTE_PREFIX + key] = value
    return facts
