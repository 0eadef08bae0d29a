from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import Index, String, text
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
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Job(Versioned, Base):
    """Long work (activating a rule set, ...) with its progress, polled at GET /v1/jobs/{id}."""

    __tablename__ = "jobs"
    __table_args__ = (
        # One unfinished activation at a time: a second one answers 409. (Simulations change
        # nothing and may run side by side.)
        Index(
            "uq_jobs_one_unfinished_activation",
            "kind",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running') AND kind = 'activation'"),
            postgresql_where=text("status IN ('queued', 'running') AND kind = 'activation'"),
        ),
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
