"""The public pool (公海): pool rules per territory, the hold clock on ownerships, release and
reclaim sources, claims indexed per owner and day, leases, the reclaim job kind.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ("rule", "manual", "claim", "transfer", "group", "merge")
CLAIMS = sa.text("source = 'claim'")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _check(table: str, name: str, column: str, values: Sequence[str]) -> None:
    with op.batch_alter_table(table) as batch_op:
        batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
        batch_op.create_check_constraint(name, sa.column(column).in_(values))


def upgrade() -> None:
    for table in ("ownerships", "ownership_events"):
        _check(table, "ownership_source", "source", (*SOURCES, "release", "reclaim"))
    _check("jobs", "job_kind", "kind", ("activation", "simulation", "handover", "reclaim"))
    with op.batch_alter_table("ownerships") as batch_op:
        batch_op.add_column(sa.Column("held_since", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE ownerships SET held_since = assigned_at WHERE owner_id IS NOT NULL")
    op.create_index(
        "ix_ownership_events_claims",
        "ownership_events",
        ["owner_id", "created_at"],
        sqlite_where=CLAIMS,
        postgresql_where=CLAIMS,
    )
    op.create_table(
        "pool_rules",
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("holding_limit", sa.Integer(), nullable=True),
        sa.Column("daily_claim_limit", sa.Integer(), nullable=True),
        sa.Column("cooldown_days", sa.Integer(), nullable=True),
        sa.Column("reclaim_enabled", sa.Boolean(), nullable=True),
        sa.Column("reclaim_after_days", sa.Integer(), nullable=True),
        sa.Column("reclaim_after_days_by_tier", JSON, nullable=True),
        sa.Column("exempt_tags", JSON, nullable=True),
        sa.Column("reminder_days", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
            name=op.f("fk_pool_rules_territory_id_territories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("territory_id", name=op.f("pk_pool_rules")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("pool_rules")
    op.drop_index("ix_ownership_events_claims", table_name="ownership_events")
    with op.batch_alter_table("ownerships") as batch_op:
        batch_op.drop_column("held_since")
    op.execute("DELETE FROM jobs WHERE kind = 'reclaim'")
    _check("jobs", "job_kind", "kind", ("activation", "simulation", "handover"))
    for table in ("ownership_events", "ownerships"):
        op.execute(f"UPDATE {table} SET source = 'manual' WHERE source IN ('release', 'reclaim')")
        _check(table, "ownership_source", "source", SOURCES)
