from __future__ import annotations

from sqlalchemy import select

from territory_service.jobs.models import Job, JobKind, JobStatus
from territory_service.repository import Repository


class JobRepository(Repository[Job]):
    model = Job
    resource_name = "job"

    async def unfinished(self, kind: JobKind, *, for_update: bool = False) -> Job | None:
        statement = select(Job).where(
            Job.kind == kind, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING))
        )
        if for_update:
            statement = statement.with_for_update()
        found: Job | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found
