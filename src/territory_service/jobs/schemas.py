import dataclasses
import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from territory_service.jobs.models import JobKind, JobStatus
from territory_service.jobs.service import JobView
from territory_service.schemas import OutputModel, PageOut, ResourceOut, by_case


class WaitingCustomers(OutputModel):
    """Customers, in id order from the first to the last, that a cancelled activation did not
    re-divide: they still sit where the previous rule set put them."""

    first_customer_id: uuid.UUID
    last_customer_id: uuid.UUID
    customers: int


class ActivationResult(OutputModel):
    kind: Literal[JobKind.ACTIVATION]
    customers: int = Field(description="Customers re-resolved under the new rule set.")
    changed: int = Field(description="Of them, those whose owner or territory changed.")
    waiting: int | None = by_case(
        "Cancelled: customers not re-divided (every customer when it was cancelled before its "
        "plan was made)."
    )
    waiting_ranges: list[WaitingCustomers] | None = by_case(
        "Cancelled after its plan was made: where the customers not re-divided are."
    )


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


class JobLease(OutputModel):
    """A worker's hold on a piece of a running job."""

    piece: int
    holder: str = Field(description="The replica working on the piece (host:pid:tag).")
    expires_at: dt.datetime = Field(
        description="When another replica may take the piece over unless its holder renews it."
    )


class Job(ResourceOut):
    id: uuid.UUID
    kind: JobKind
    status: JobStatus = Field(
        description="`queued` until a replica works on it, `running` only while one holds a "
        "live lease on a piece of it (`leases`), then `succeeded`, `failed` or `cancelled`."
    )
    subject_id: uuid.UUID | None = Field(description="What the job works on (e.g. the rule set).")
    total: int = Field(description="Items to process; 0 until known.")
    done: int
    result: JobResult | None = Field(
        description="What the job did, by its `kind`; null until it has succeeded (a cancelled "
        "activation says which customers still wait for the new rule set)."
    )
    error: str | None
    run_at: dt.datetime | None = Field(description="Not before this time; null: at once.")
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    leases: list[JobLease] = Field(description="The pieces replicas are working on now.")

    @classmethod
    def of(cls, job: Any) -> "Job":
        """A job just queued: no worker holds it yet."""
        return cls.shown(JobView(job, []))

    @classmethod
    def shown(cls, view: JobView) -> "Job":
        """A stored job as shown: `running` while a lease on one of its pieces is live, its
        result once it has ended."""
        job, status = view.job, view.status
        fields = {name: getattr(job, name) for name in cls.model_fields if hasattr(job, name)}
        ended = status in (JobStatus.SUCCEEDED, JobStatus.CANCELLED)
        return cls.model_validate(
            fields
            | {
                "status": status,
                "result": job.result if ended else None,
                "leases": [dataclasses.asdict(lease) for lease in view.leases],
            }
        )

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


class JobPage(PageOut):
    items: list[Job]
