"""Jobs: long work that runs after its request has answered, in pieces that any replica's
worker carries on (`jobs/worker.py`), with progress in the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.config import Settings
from territory_service.db import utcnow
from territory_service.errors import Conflict
from territory_service.jobs.models import Job, JobKind, JobPiece, JobStatus
from territory_service.jobs.repository import JobRepository
from territory_service.jobs.worker import NewPiece, Worker, pieces_finished
from territory_service.logs import request_id_var
from territory_service.pagination import Page, paginate
from territory_service.security.principal import ActingOwner, Principal
from territory_service.transaction import transaction

# The workers of this process, woken when a job is queued here.
_WORKERS: set[Worker] = set()


@dataclass(frozen=True)
class Lease:
    piece: int
    holder: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class JobView:
    """A job as shown: `running` while a worker holds a live lease on one of its pieces."""

    job: Job
    leases: list[Lease]

    @property
    def status(self) -> JobStatus:
        if self.job.status is JobStatus.QUEUED and self.leases:
            return JobStatus.RUNNING
        return self.job.status


def caller_params(principal: Principal | None, reason: str) -> dict[str, Any]:
    """Who asked and why, for the events the job writes on whichever replica runs it (the
    worker sets the request id again while it works a piece)."""
    acting = principal.acting_owner if principal else None
    return {
        "reason": reason,
        "actor_key_id": None if principal is None else str(principal.key_id),
        "acting_owner": None
        if acting is None
        else {"id": str(acting.id), "external_id": acting.external_id},
        "request_id": request_id_var.get(),
    }


def actor_of(params: dict[str, Any]) -> Principal | None:
    """The caller `caller_params` kept, as far as the work needs it (attribution)."""
    key_id, acting = params.get("actor_key_id"), params.get("acting_owner")
    if key_id is None:
        return None
    owner = None if acting is None else ActingOwner(uuid.UUID(acting["id"]), acting["external_id"])
    return Principal(uuid.UUID(key_id), frozenset(), None, owner)


async def enqueue(
    session: AsyncSession,
    job: Job,
    first: NewPiece,
) -> Job:
    """Add `job` with its first piece in the caller's transaction; call `notify()` once it has
    committed."""
    job = await JobRepository(session).add(job)
    session.add(JobPiece(job_id=job.id, number=0, step=first.step, payload=first.payload))
    await session.flush()
    return job


async def progress(
    session_factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID, **counts: int
) -> None:
    """Show how far a long piece has come (`done`, `total`), in a transaction of its own. (A
    job made of many pieces counts them as they complete instead.)"""
    async with session_factory() as session, transaction(session, resource="job"):
        repository = JobRepository(session)
        job = await repository.get_or_raise(job_id, for_update=True)
        if job.status is JobStatus.QUEUED:
            await repository.update(job, counts)


def notify() -> None:
    """Wake this process's workers: a job was queued."""
    for worker in _WORKERS:
        worker.wake()


def register(worker: Worker) -> None:
    _WORKERS.add(worker)


def unregister(worker: Worker) -> None:
    _WORKERS.discard(worker)


async def get_job(session: AsyncSession, *, job_id: uuid.UUID) -> JobView:
    async with transaction(session, resource="job"):
        job = await JobRepository(session).get_or_raise(job_id)
        return (await _views(session, [job]))[0]


async def list_jobs(
    session: AsyncSession,
    *,
    kind: JobKind | None,
    status: JobStatus | None,
    subject_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> Page[JobView]:
    async with transaction(session, resource="job"):
        statement = select(Job)
        if kind is not None:
            statement = statement.where(Job.kind == kind)
        if subject_id is not None:
            statement = statement.where(Job.subject_id == subject_id)
        if status is not None:
            stored = JobStatus.QUEUED if status is JobStatus.RUNNING else status
            statement = statement.where(Job.status == stored)
        page = await paginate(session, statement, key=Job.id, limit=limit, cursor=cursor)
        views = await _views(session, page.items)
        if status in (JobStatus.QUEUED, JobStatus.RUNNING):
            views = [view for view in views if view.status is status]
        return Page(items=views, next_cursor=page.next_cursor)


async def _views(session: AsyncSession, jobs: Sequence[Job]) -> list[JobView]:
    now = utcnow()
    leases: dict[uuid.UUID, list[Lease]] = {job.id: [] for job in jobs}
    unfinished = [job.id for job in jobs if job.status is JobStatus.QUEUED]
    if unfinished:
        rows = await session.execute(
            select(
                JobPiece.job_id, JobPiece.number, JobPiece.lease_holder, JobPiece.lease_expires_at
            )
            .where(
                JobPiece.job_id.in_(unfinished),
                JobPiece.done_at.is_(None),
                JobPiece.lease_expires_at > now,
            )
            .order_by(JobPiece.job_id, JobPiece.number)
        )
        for job_id, number, holder, expires_at in rows:
            leases[job_id].append(Lease(number, str(holder), expires_at or now))
    return [JobView(job, leases[job.id]) for job in jobs]


class JobFinished(Conflict):
    slug = "job-finished"
    title = "The job has finished"


async def cancel_job(session: AsyncSession, *, job_id: uuid.UUID) -> JobView:
    """Stop a job: no piece starts after this, and a piece running now commits nothing (its
    last statement finds the job cancelled). What finished pieces applied stays applied; the
    job's result says how far it came."""
    async with transaction(session, resource="job"):
        repository = JobRepository(session)
        job = await repository.get_or_raise(job_id, for_update=True)
        if job.status is not JobStatus.QUEUED:
            raise JobFinished(f"job {job_id} has already {job.status.value}", job_id=str(job_id))
        for cancelled in _ON_CANCEL.get(job.kind, ()):
            await cancelled(session, job)
        now = utcnow()
        await repository.update(job, {"status": JobStatus.CANCELLED, "finished_at": now})
        return (await _views(session, [job]))[0]


async def wait_for_all() -> None:
    """Work the queued jobs that are due until none is left (tests; a worker runs them anyway,
    this only saves waiting for its next look). While other workers hold every piece there is,
    it waits for one of them to finish a piece rather than asking the database again."""
    while _WORKERS:
        worker = next(iter(_WORKERS))  # any: they share the same jobs
        async with worker.session_factory() as session:
            due = await session.scalar(
                select(Job.id)
                .where(Job.status == JobStatus.QUEUED)
                .where((Job.run_at.is_(None)) | (Job.run_at <= utcnow()))
                .limit(1)
            )
        if due is None:
            return
        if not await worker.run_one():
            await pieces_finished.wait(timeout=0.2)


async def work_to_end(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Work every due job to its end in this process, with workers of its own, as many as a
    server runs (the demo loader and benchmarks, which run no server)."""
    count = 1 if settings.is_sqlite else settings.job_workers
    workers = [Worker(session_factory, settings) for _ in range(count)]
    for worker in workers:
        register(worker)
    helpers = [asyncio.create_task(worker.run()) for worker in workers[1:]]
    try:
        await wait_for_all()
    finally:
        for worker in workers:
            unregister(worker)
            await worker.stop()
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)


CancelHook = Any
_ON_CANCEL: dict[JobKind, list[CancelHook]] = {}


def on_cancel(kind: JobKind, hook: CancelHook) -> None:
    """What cancelling a job of `kind` does besides ending it (in the same transaction)."""
    _ON_CANCEL.setdefault(kind, []).append(hook)
