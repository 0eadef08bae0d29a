import uuid

from fastapi import APIRouter, Response

from territory_service.api.authentication import RulesRead
from territory_service.api.dependencies import SessionDep, set_etag
from territory_service.api.problems import problem_responses
from territory_service.jobs import service
from territory_service.jobs.schemas import Job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=Job, responses=problem_responses(404))
async def get_job(
    job_id: uuid.UUID,
    session: SessionDep,
    principal: RulesRead,  # noqa: ARG001 (checks the scope)
    response: Response,
) -> Job:
    """A job's status and progress (`done` of `total`); poll until `succeeded` or `failed`."""
    job = await service.get_job(session, job_id=job_id)
    set_etag(response, job.version)
    return Job.model_validate(job)
