"""Duplicates and merges: customers' normalized names; external ids of merged customers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from territory_service.customers.names import normalize_name

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("normalized_name", sa.String(length=200), nullable=True))
    customers = sa.table(
        "customers", sa.column("id", sa.Uuid()), sa.column("name"), sa.column("normalized_name")
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(customers.c.id, customers.c.name)).all()
    if rows:
        connection.execute(
            customers.update()
            .where(customers.c.id == sa.bindparam("row_id"))
            .values(normalized_name=sa.bindparam("folded")),
            [{"row_id": row.id, "folded": normalize_name(row.name)} for row in rows],
        )
    with op.batch_alter_table("customers") as batch_op:
        batch_op.alter_column("normalized_name", nullable=False)
    op.create_index(op.f("ix_customers_normalized_name"), "customers", ["normalized_name"])
    op.create_table(
        "customer_aliases",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("merged_customer_id", sa.Uuid(), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_aliases_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source", "external_id", name=op.f("pk_customer_aliases")),
    )
    op.create_index(op.f("ix_customer_aliases_customer_id"), "customer_aliases", ["customer_id"])


def downgrade() -> None:
    op.drop_table("customer_aliases")
    op.drop_index(op.f("ix_customers_normalized_name"), table_name="customers")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("normalized_name")
