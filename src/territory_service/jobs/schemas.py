import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from territory_service.jobs.models import JobKind, JobStatus
from territory_service.schemas import OutputModel, ResourceOut


class ActivationResult(OutputModel):
    kind: Literal[JobKind.ACTIVATION]
    customers: int = Field(description="Customers re-resolved under the new rule set.")
    changed: int = Field(description="Of them, those whose owner or territory changed.")


class LoadChange(OutputModel):
    """Customers held before and after, for one owner or one territory."""

    owner_id: uuid.UUID | None = None
    territory_id: uuid.UUID | None = None
    before: int
    after: int
    change: int


class SimulatedLoad(OutputModel):
    owners: list[LoadChange]
    territories: list[LoadChange]


class SimulatedConflicts(OutputModel):
    kind: str = Field(description="The conflict kind, as in `/v1/conflicts`.")
    conflicts: int
    customers: int


class SimulationResult(OutputModel):
    kind: Literal[JobKind.SIMULATION]
    customers: int
    moves: int = Field(description="Customers that would change owner or territory.")
    territory_changes: int
    to_pool: int = Field(description="Customers that would go to a territory's pool.")
    load: SimulatedLoad
    conflicts: list[SimulatedConflicts]


class HandoverResult(OutputModel):
    kind: Literal[JobKind.HANDOVER]
    moved: int
    to_pool: int


class ReclaimResult(OutputModel):
    kind: Literal[JobKind.RECLAIM]
    reclaimed: int


JobResult = Annotated[
    ActivationResult | SimulationResult | HandoverResult | ReclaimResult,
    Field(discriminator="kind"),
]


class Job(ResourceOut):
    id: uuid.UUID
    kind: JobKind
    status: JobStatus
    subject_id: uuid.UUID | None = Field(description="What the job works on (e.g. the rule set).")
    total: int = Field(description="Items to process; 0 until known.")
    done: int
    result: JobResult | None = Field(
        description="What the job did, by its `kind`; null until it has succeeded."
    )
    error: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @model_validator(mode="before")
    @classmethod
    def _result_of_its_kind(cls, job: Any) -> Any:
        """The stored result is the work's own dict; it is shown tagged with the job's kind."""
        kind, result = (
            (job.get("kind"), job.get("result"))
            if isinstance(job, dict)
            else (getattr(job, "kind", None), getattr(job, "result", None))
        )
        if isinstance(result, dict) and "kind" not in result:
            shown = {"kind": kind, **result} if result else None
            if isinstance(job, dict):
                return job | {"result": shown}
            fields = {name: getattr(job, name) for name in cls.model_fields if name != "result"}
            return fields | {"result": shown}
        return job
