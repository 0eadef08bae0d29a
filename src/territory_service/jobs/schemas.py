import datetime as dt
import uuid
from typing import Any

from pydantic import Field

from territory_service.jobs.models import JobKind, JobStatus
from territory_service.schemas import ResourceOut


class Job(ResourceOut):
    id: uuid.UUID
    kind: JobKind
    status: JobStatus
    subject_id: uuid.UUID | None = Field(description="What the job works on (e.g. the rule set).")
    total: int = Field(description="Items to process; 0 until known.")
    done: int
    result: dict[str, Any]
    error: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
