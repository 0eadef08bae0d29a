"""Transfers with their items; the hand-over job kind.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _job_kinds(*kinds: str) -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_job_kind"), type_="check")
        batch_op.create_check_constraint("job_kind", sa.column("kind").in_(kinds))


def upgrade() -> None:
    _job_kinds("activation", "simulation", "handover")
    op.create_table(
        "transfers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "applied",
                "rejected",
                "cancelled",
                name="transfer_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("to_owner_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("requested_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("requested_by_owner_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by_owner_id", sa.Uuid(), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    op.create_index("ix_transfers_status_created_at", "transfers", ["status", "created_at"])
    op.create_index(op.f("ix_transfers_to_owner_id"), "transfers", ["to_owner_id"])
    op.create_table(
        "transfer_items",
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("expected_version", sa.Integer(), nullable=False),
        sa.Column("from_territory_id", sa.Uuid(), nullable=False),
        sa.Column("from_owner_id", sa.Uuid(), nullable=True),
        sa.Column("to_territory_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "applied",
                "failed",
                name="transfer_item_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("failure", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
            name=op.f("fk_transfer_items_transfer_id_transfers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("transfer_id", "customer_id", name=op.f("pk_transfer_items")),
    )
    op.create_index(op.f("ix_transfer_items_customer_id"), "transfer_items", ["customer_id"])
    op.create_index(
        op.f("ix_transfer_items_to_territory_id"), "transfer_items", ["to_territory_id"]
    )


def downgrade() -> None:
    op.drop_table("transfer_items")
    op.drop_table("transfers")
    op.execute("DELETE FROM jobs WHERE kind = 'handover'")
    _job_kinds("activation", "simulation")
