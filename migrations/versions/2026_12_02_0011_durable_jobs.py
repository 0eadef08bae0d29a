"""Durable jobs: pieces of work any replica leases, the planned changes of a re-division, a
cancelled status, the parameters a job runs with, dated jobs and scheduled rule sets. The
reclaim's lease table goes: the reclaim is a job like the others, one unfinished at a time.

Jobs left unfinished by the previous version cannot be carried on (their work lived in the
memory of the process that ran them): they end as failed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
STATUSES = ("queued", "running", "succeeded", "failed")
SOURCES = ("rule", "manual", "claim", "transfer", "group", "merge", "release", "reclaim")
ONE_ACTIVATION = sa.text("status IN ('queued', 'running') AND kind = 'activation'")
ONE_PER_KIND = sa.text("status IN ('queued', 'running') AND kind IN ('activation', 'reclaim')")
UNDONE = sa.text("done_at IS NULL")


def _unique_unfinished(name: str, where: sa.TextClause) -> None:
    op.create_index(name, "jobs", ["kind"], unique=True, sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    op.execute(
        "UPDATE jobs SET status = 'failed', error = 'interrupted by an upgrade of the service' "
        "WHERE status IN ('queued', 'running')"
    )
    op.drop_index("uq_jobs_one_unfinished_activation", table_name="jobs")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("params", JSON, nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("run_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f("ck_jobs_job_status"), type_="check")
        batch_op.create_check_constraint(
            "job_status", sa.column("status").in_((*STATUSES, "cancelled"))
        )
    with op.batch_alter_table("jobs") as batch_op:  # the default only filled the rows there
        batch_op.alter_column("params", server_default=None)
    _unique_unfinished("uq_jobs_one_unfinished_per_kind", ONE_PER_KIND)
    op.create_index("ix_jobs_kind_status", "jobs", ["kind", "status"])
    op.create_table(
        "job_pieces",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("lease_holder", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_pieces_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "number", name=op.f("pk_job_pieces")),
    )
    op.create_index(
        "ix_job_pieces_undone",
        "job_pieces",
        ["job_id", "number"],
        sqlite_where=UNDONE,
        postgresql_where=UNDONE,
    )
    op.create_table(
        "planned_changes",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("piece", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_territory_id", sa.Uuid(), nullable=True),
        sa.Column("from_owner_id", sa.Uuid(), nullable=True),
        sa.Column("territory_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column(
            "source",
            sa.Enum(
                *SOURCES,
                name="ownership_source",
                native_enum=False,
                length=16,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("ruleset_version", sa.Integer(), nullable=True),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_held_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint(
            "job_id", "generation", "piece", "customer_id", name=op.f("pk_planned_changes")
        ),
    )
    op.drop_table("leases")
    with op.batch_alter_table("rulesets") as batch_op:
        batch_op.add_column(sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f("ck_rulesets_ruleset_state"), type_="check")
        batch_op.create_check_constraint(
            "ruleset_state", sa.column("state").in_(("draft", "scheduled", "active", "archived"))
        )


def downgrade() -> None:
    op.execute("UPDATE rulesets SET state = 'draft' WHERE state = 'scheduled'")
    with op.batch_alter_table("rulesets") as batch_op:
        batch_op.drop_constraint(op.f("ck_rulesets_ruleset_state"), type_="check")
        batch_op.create_check_constraint(
            "ruleset_state", sa.column("state").in_(("draft", "active", "archived"))
        )
        batch_op.drop_column("scheduled_for")
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.drop_table("planned_changes")
    op.drop_index("ix_job_pieces_undone", table_name="job_pieces")
    op.drop_table("job_pieces")
    op.drop_index("ix_jobs_kind_status", table_name="jobs")
    op.drop_index("uq_jobs_one_unfinished_per_kind", table_name="jobs")
    op.execute("UPDATE jobs SET status = 'failed' WHERE status = 'cancelled'")
    op.execute("UPDATE jobs SET status = 'failed' WHERE status = 'queued'")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_job_status"), type_="check")
        batch_op.create_check_constraint("job_status", sa.column("status").in_(STATUSES))
        batch_op.drop_column("run_at")
        batch_op.drop_column("params")
    _unique_unfinished("uq_jobs_one_unfinished_activation", ONE_ACTIVATION)
