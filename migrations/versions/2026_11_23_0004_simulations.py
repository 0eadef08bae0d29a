"""Simulations: job kind, the moves a simulated rule set would make; one unfinished job
constraint for activations only (simulations may run side by side); the events' customer index
is covered by their unique (customer_id, version).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = "status IN ('queued', 'running')"


def _job_kinds(*kinds: str) -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_job_kind"), type_="check")
        batch_op.create_check_constraint(
            "job_kind",
            sa.column("kind").in_(kinds),  # named ck_jobs_job_kind by the convention
        )


def upgrade() -> None:
    _job_kinds("activation", "simulation")
    op.drop_index("uq_jobs_one_unfinished_per_kind", table_name="jobs")
    where = sa.text(f"{UNFINISHED} AND kind = 'activation'")
    op.create_index(
        "uq_jobs_one_unfinished_activation",
        "jobs",
        ["kind"],
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )
    op.create_table(
        "simulation_moves",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("from_territory_id", sa.Uuid(), nullable=True),
        sa.Column("from_owner_id", sa.Uuid(), nullable=True),
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_simulation_moves_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "customer_id", name=op.f("pk_simulation_moves")),
    )
    op.drop_index("ix_ownership_events_customer_id", table_name="ownership_events")


def downgrade() -> None:
    op.create_index("ix_ownership_events_customer_id", "ownership_events", ["customer_id"])
    op.drop_table("simulation_moves")
    op.execute("DELETE FROM jobs WHERE kind = 'simulation'")
    op.drop_index("uq_jobs_one_unfinished_activation", table_name="jobs")
    op.create_index(
        "uq_jobs_one_unfinished_per_kind",
        "jobs",
        ["kind"],
        unique=True,
        sqlite_where=sa.text(UNFINISHED),
        postgresql_where=sa.text(UNFINISHED),
    )
    _job_kinds("activation")
