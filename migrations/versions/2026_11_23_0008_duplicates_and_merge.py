"""Duplicates and merges: customers' folded names and registration ids; external ids of merged
customers; who closed a conflict and the action its resolution carried.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from territory_service.customers.names import normalize_name, registration_key

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Existing customers are folded in chunks of this many, so a large pool is never held at once.
CHUNK = 10_000


def _fold_existing_customers() -> None:
    customers = sa.table(
        "customers",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("registration_id", sa.String()),
        sa.column("normalized_name", sa.String()),
        sa.column("registration_key", sa.String()),
    )
    update = (
        customers.update()
        .where(customers.c.id == sa.bindparam("row_id"))
        .values(
            normalized_name=sa.bindparam("folded_name"),
            registration_key=sa.bindparam("folded_registration"),
        )
    )
    connection = op.get_bind()
    after = None
    while True:
        chunk = (
            sa.select(customers.c.id, customers.c.name, customers.c.registration_id)
            .order_by(customers.c.id)
            .limit(CHUNK)
        )
        if after is not None:
            chunk = chunk.where(customers.c.id > after)
        rows = connection.execute(chunk).all()
        if not rows:
            return
        connection.execute(
            update,
            [
                {
                    "row_id": row.id,
                    "folded_name": normalize_name(row.name),
                    "folded_registration": registration_key(row.registration_id),
                }
                for row in rows
            ],
        )
        after = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("normalized_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("registration_key", sa.String(length=64), nullable=True))
    _fold_existing_customers()
    with op.batch_alter_table("customers") as batch_op:
        batch_op.alter_column("normalized_name", nullable=False)
    op.create_index(op.f("ix_customers_normalized_name"), "customers", ["normalized_name"])
    op.create_index(op.f("ix_customers_registration_key"), "customers", ["registration_key"])
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
    op.create_index(
        op.f("ix_customer_aliases_merged_customer_id"), "customer_aliases", ["merged_customer_id"]
    )
    with op.batch_alter_table("conflicts") as batch_op:
        batch_op.add_column(sa.Column("closed_by_owner_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("resolution_action", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conflicts") as batch_op:
        batch_op.drop_column("resolution_action")
        batch_op.drop_column("closed_by_owner_id")
    op.drop_table("customer_aliases")
    op.drop_index(op.f("ix_customers_registration_key"), table_name="customers")
    op.drop_index(op.f("ix_customers_normalized_name"), table_name="customers")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("registration_key")
        batch_op.drop_column("normalized_name")
