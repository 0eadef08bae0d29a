import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from territory_service.api.authentication import RulesRead, RulesWrite
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    LimitQuery,
    SessionDep,
    set_etag,
)
from territory_service.api.problems import problem_responses
from territory_service.jobs import service
from territory_service.jobs.models import JobKind, JobStatus
from territory_service.jobs.schemas import Job, JobPage

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("", response_model=JobPage, responses=problem_responses())
async def list_jobs(
    session: SessionDep,
    principal: RulesRead,  # noqa: ARG001 (checks the scope)
    kind: Annotated[JobKind | None, Query(description="Only jobs of this kind.")] = None,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    subject_id: Annotated[
        uuid.UUID | None, Query(description="Only jobs working on this (a rule set, an owner).")
    ] = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> JobPage:
    """Jobs, oldest first; filters combine with AND. A page filtered by `queued` or `running`
    may hold fewer items than `limit` and still have a next page."""
    page = await service.list_jobs(
        session, kind=kind, status=status, subject_id=subject_id, limit=limit, cursor=cursor
    )
    return JobPage(items=[Job.shown(view) for view in page.items], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=Job, responses=problem_responses(404))
async def get_job(
    job_id: uuid.UUID,
    session: SessionDep,
    principal: RulesRead,  # noqa: ARG001 (checks the scope)
    response: Response,
) -> Job:
    """A job's status and progress (`done` of `total`); poll until it has `succeeded`,
    `failed` or been `cancelled`. While `running`, `leases` says which replica works on it."""
    view = await service.get_job(session, job_id=job_id)
    set_etag(response, view.job.version)
    return Job.shown(view)


@router.post("/{job_id}/cancel", response_model=Job, responses=problem_responses(404, 409))
async def cancel_job(
    job_id: uuid.UUID,
    session: SessionDep,
    principal: RulesWrite,  # noqa: ARG001 (checks the scope)
    response: Response,
) -> Job:
    """Stop a queued or running job: no piece of it starts after this, and a piece being
    worked commits nothing. What it already did stays done; its `result` says how far it came
    (a cancelled activation: which customers still wait for the new rule set, who stay where
    the previous one put them). An activation dated for later is cancelled before it begins
    and its rule set is a draft again. A job that has ended answers 409 `job-finished`."""
    view = await service.cancel_job(session, job_id=job_id)
    set_etag(response, view.job.version)
    return Job.shown(view)
