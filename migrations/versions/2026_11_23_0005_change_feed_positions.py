"""Change feed positions: ownership events get their feed position once committed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSEQUENCED = sa.text("position IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("ownership_events") as batch_op:
        batch_op.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
    op.create_index("uq_ownership_events_position", "ownership_events", ["position"], unique=True)
    op.create_index(
        "ix_ownership_events_unsequenced",
        "ownership_events",
        ["id"],
        sqlite_where=UNSEQUENCED,
        postgresql_where=UNSEQUENCED,
    )


def downgrade() -> None:
    op.drop_index("ix_ownership_events_unsequenced", table_name="ownership_events")
    op.drop_index("uq_ownership_events_position", table_name="ownership_events")
    with op.batch_alter_table("ownership_events") as batch_op:
        batch_op.drop_column("position")
