"""Customers, owners, territories with members, ownership and its event history.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OWNERSHIP_SOURCES = ("rule", "manual", "claim", "transfer", "group", "merge")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _resource_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        *_resource_columns(),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_owners_capacity_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owners")),
        sa.UniqueConstraint("external_id", name=op.f("uq_owners_external_id")),
    )
    op.create_table(
        "territories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column(
            "strategy",
            _enum("distribution_strategy", "round_robin", "weighted", "least_loaded"),
            nullable=False,
        ),
        *_resource_columns(),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["territories.id"],
            name=op.f("fk_territories_parent_id_territories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_territories")),
        sa.UniqueConstraint("code", name=op.f("uq_territories_code")),
    )
    op.create_index(op.f("ix_territories_parent_id"), "territories", ["parent_id"])

    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(64), nullable=True),
        sa.Column("province", sa.String(64), nullable=True),
        sa.Column("city", sa.String(64), nullable=True),
        sa.Column("district", sa.String(64), nullable=True),
        sa.Column("industry", sa.String(64), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column("annual_revenue", sa.Double(), nullable=True),
        sa.Column("tier", sa.String(32), nullable=True),
        sa.Column("potential_score", sa.SmallInteger(), nullable=True),
        sa.Column("tags", JSON_DOCUMENT, nullable=False),
        sa.Column("attributes", JSON_DOCUMENT, nullable=False),
        sa.Column("registration_id", sa.String(64), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("last_activity_at", TIMESTAMP, nullable=True),
        *_resource_columns(),
        sa.CheckConstraint(
            "annual_revenue >= 0", name=op.f("ck_customers_annual_revenue_non_negative")
        ),
        sa.CheckConstraint("employees >= 0", name=op.f("ck_customers_employees_non_negative")),
        sa.CheckConstraint(
            "potential_score BETWEEN 0 AND 100", name=op.f("ck_customers_potential_score_range")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["customers.id"],
            name=op.f("fk_customers_parent_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("registration_id", name=op.f("uq_customers_registration_id")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_customers_source_external_id")),
    )
    for column in ("city", "industry", "parent_id", "province", "tier"):
        op.create_index(op.f(f"ix_customers_{column}"), "customers", [column])
    op.create_index("ix_customers_updated_at", "customers", ["updated_at"])
    op.create_index("ix_customers_tags", "customers", ["tags"], postgresql_using="gin")

    op.create_table(
        "territory_members",
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("role", _enum("member_role", "member", "manager"), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        *_resource_columns(),
        sa.CheckConstraint(
            "capacity >= 0", name=op.f("ck_territory_members_capacity_non_negative")
        ),
        sa.CheckConstraint("weight >= 1", name=op.f("ck_territory_members_weight_positive")),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["owners.id"],
            name=op.f("fk_territory_members_owner_id_owners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
            name=op.f("fk_territory_members_territory_id_territories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("territory_id", "owner_id", name=op.f("pk_territory_members")),
    )
    op.create_index(op.f("ix_territory_members_owner_id"), "territory_members", ["owner_id"])

    op.create_table(
        "ownerships",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("source", _enum("ownership_source", *OWNERSHIP_SOURCES), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("assigned_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_ownerships_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["owners.id"],
            name=op.f("fk_ownerships_owner_id_owners"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
            name=op.f("fk_ownerships_territory_id_territories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_ownerships")),
    )
    op.create_index(op.f("ix_ownerships_owner_id"), "ownerships", ["owner_id"])
    op.create_index(op.f("ix_ownerships_territory_id"), "ownerships", ["territory_id"])

    op.create_table(
        "ownership_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_territory_id", sa.Uuid(), nullable=True),
        sa.Column("from_owner_id", sa.Uuid(), nullable=True),
        sa.Column("territory_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("source", _enum("ownership_source", *OWNERSHIP_SOURCES), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ownership_events")),
        sa.UniqueConstraint(
            "customer_id", "version", name=op.f("uq_ownership_events_customer_id_version")
        ),
    )
    op.create_index(op.f("ix_ownership_events_customer_id"), "ownership_events", ["customer_id"])


def downgrade() -> None:
    for table in (
        "ownership_events",
        "ownerships",
        "territory_members",
        "customers",
        "territories",
        "owners",
    ):
        op.drop_table(table)
