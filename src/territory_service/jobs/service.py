"""Jobs: long work that runs after its request has answered, with progress in the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.db import utcnow
from territory_service.jobs.models import Job, JobStatus
from territory_service.jobs.repository import JobRepository
from territory_service.transaction import transaction

logger = logging.getLogger(__name__)

# A running job writes its progress at least this often; one silent for longer was abandoned
# (its process died) and no longer blocks a new job of its kind.
HEARTBEAT_TIMEOUT = dt.timedelta(minutes=5)

# References to running tasks, so they are not garbage-collected mid-run.
_RUNNING: set[asyncio.Task[None]] = set()


async def get_job(session: AsyncSession, *, job_id: uuid.UUID) -> Job:
    async with transaction(session, resource="job"):
        return await JobRepository(session).get_or_raise(job_id)


def is_abandoned(job: Job) -> bool:
    return job.status is JobStatus.RUNNING and job.updated_at < utcnow() - HEARTBEAT_TIMEOUT


async def report(
    session_factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    **changes: Any,
) -> None:
    """Write a job's progress or outcome in a transaction of its own."""
    async with session_factory() as session, transaction(session, resource="job"):
        repository = JobRepository(session)
        job = await repository.get_or_raise(job_id, for_update=True)
        # A known total grows with work found meanwhile (customers added during the run), so
        # that `done` never passes it.
        total = changes.get("total", job.total)
        if total and changes.get("done", 0) > total:
            changes = changes | {"total": changes["done"]}
        await repository.update(job, changes | {"updated_at": utcnow()})


async def run(
    session_factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    work: Callable[[], Awaitable[dict[str, Any]]],
) -> None:
    """Run `work` now; its result or failure ends the job."""
    await report(session_factory, job_id, status=JobStatus.RUNNING, started_at=utcnow())
    try:
        result = await work()
    except Exception as exc:
        logger.exception("job failed", extra={"job_id": str(job_id)})
        await report(
            session_factory,
            job_id,
            status=JobStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=utcnow(),
        )
        return
    await succeed(session_factory, job_id, result)


async def succeed(
    session_factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID, result: dict[str, Any]
) -> None:
    """End the job as succeeded with its progress complete: `done == total`, whatever the work
    last reported. (Customers added meanwhile may have made `done` outgrow the `total` counted
    at the start, and work that cannot count ahead reports no `total` at all.)"""
    async with session_factory() as session, transaction(session, resource="job"):
        repository = JobRepository(session)
        job = await repository.get_or_raise(job_id, for_update=True)
        total = max(job.total, job.done)
        now = utcnow()
        await repository.update(
            job,
            {
                "status": JobStatus.SUCCEEDED,
                "result": result,
                "total": total,
                "done": total,
                "finished_at": now,
                "updated_at": now,
            },
        )


def start(
    session_factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    work: Callable[[], Awaitable[dict[str, Any]]],
) -> None:
    """Run `work` in the background, after the request has answered."""
    task = asyncio.create_task(run(session_factory, job_id, work), name=f"job-{job_id}")
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def wait_for_all() -> None:
    """Let running jobs finish (tests, and a graceful shutdown)."""
    while _RUNNING:
        await asyncio.gather(*list(_RUNNING), return_exceptions=True)
