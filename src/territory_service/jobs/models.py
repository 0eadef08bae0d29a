from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, JSONDocument, UTCDateTime, Versioned, string_enum
from territory_service.ids import new_id


class JobKind(enum.StrEnum):
    ACTIVATION = "activation"
    SIMULATION = "simulation"
    HANDOVER = "handover"
    RECLAIM = "reclaim"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    # Never stored: a queued job is shown running while a replica holds a live lease on one of
    # its pieces (`jobs.service.shown_status`), so a job whose replica died cannot stay running.
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


# One unfinished job of these kinds at a time: a second activation answers 409, and a manual
# reclaim never overlaps the scheduled one. (Simulations and hand-overs of different owners may
# run side by side.)
_ONE_AT_A_TIME = "status IN ('queued', 'running') AND kind IN ('activation', 'reclaim')"


class Job(Versioned, Base):
    """Long work (activating a rule set, ...) with its progress, polled at GET /v1/jobs/{id}.

    The work itself is done in pieces (`JobPiece`) that any replica's worker may take."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(
            "uq_jobs_one_unfinished_per_kind",
            "kind",
            unique=True,
            sqlite_where=text(_ONE_AT_A_TIME),
            postgresql_where=text(_ONE_AT_A_TIME),
        ),
        Index("ix_jobs_kind_status", "kind", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[JobKind] = mapped_column(string_enum(JobKind, "job_kind", 24))
    status: Mapped[JobStatus] = mapped_column(
        string_enum(JobStatus, "job_status"), default=JobStatus.QUEUED
    )
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    error: Mapped[str | None] = mapped_column(String(2000))
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # What the work needs to run on any replica: who asked and why, and the kind's own inputs.
    params: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # Not before: an activation dated for later (`effective_at`); NULL: at once.
    run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class JobPiece(Base):
    """One piece of a job's work. A worker leases it, heartbeats while it works, and commits the
    piece's writes with `done_at` in one transaction, so a piece is applied once and whole. A
    lease whose holder stopped heartbeating lapses and another worker takes the piece."""

    __tablename__ = "job_pieces"
    __table_args__ = (
        Index(
            "ix_job_pieces_undone",
            "job_id",
            "number",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    step: Mapped[str] = mapped_column(String(32))
    # The step's inputs for this piece (a cursor, the customers it covers, ...).
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    lease_holder: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
