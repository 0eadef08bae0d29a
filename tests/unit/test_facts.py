"""The facts rules read are columns of the stored customer: a field the engine knows that the
table lacks, or that the read leaves out, would read as missing for every customer."""

from typing import Any

from territory_service.customers.models import Customer
from territory_service.engine.facts import FIELDS, FieldKind
from territory_service.ownership.resolver import customer_facts


def test_every_fact_field_is_a_customer_column() -> None:
    assert {*FIELDS, "attributes"} <= set(Customer.__table__.columns.keys())


def test_a_stored_customer_gives_every_fact_field_its_value() -> None:
    values: dict[str, Any] = {
        name: {FieldKind.STRING: f"v-{name}", FieldKind.NUMBER: 7, FieldKind.TAGS: ["vip"]}[kind]
        for name, kind in FIELDS.items()
    }
    facts = customer_facts(Customer(**values, attributes={"a": 1}))
    assert {name: facts[name] for name in FIELDS if name != "tags"} == {
        name: value for name, value in values.items() if name != "tags"
    }
    assert facts["tags"] == frozenset({"vip"})
    assert facts["attributes.a"] == 1
