"""Every customer a conflict names, in a table of its own: `conflicts.customer_ids` keeps a
sample of the first 100, and `?customer_id=` finds a conflict through any of them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The customers each conflict listed so far are the ones known: a UUID per JSON string (stored
# as 32 hex digits on SQLite, as `uuid` on PostgreSQL).
BACKFILL = {
    "postgresql": (
        "INSERT INTO conflict_customers (conflict_id, customer_id) "
        "SELECT conflicts.id, listed.value::uuid "
        "FROM conflicts, jsonb_array_elements_text(conflicts.customer_ids) AS listed(value) "
        "ON CONFLICT DO NOTHING"
    ),
    "sqlite": (
        "INSERT OR IGNORE INTO conflict_customers (conflict_id, customer_id) "
        "SELECT conflicts.id, lower(replace(listed.value, '-', '')) "
        "FROM conflicts, json_each(conflicts.customer_ids) AS listed"
    ),
}


def upgrade() -> None:
    op.create_table(
        "conflict_customers",
        sa.Column("conflict_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conflict_id"],
            ["conflicts.id"],
            name=op.f("fk_conflict_customers_conflict_id_conflicts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conflict_id", "customer_id", name=op.f("pk_conflict_customers")),
    )
    op.create_index(
        op.f("ix_conflict_customers_customer_id"), "conflict_customers", ["customer_id"]
    )
    op.execute(BACKFILL[op.get_bind().dialect.name])


def downgrade() -> None:
    op.drop_index(op.f("ix_conflict_customers_customer_id"), table_name="conflict_customers")
    op.drop_table("conflict_customers")
