"""The worker every replica runs: it takes pieces of jobs from the database, keeps its lease on
the piece it works on alive, and hands the piece back when the replica is told to stop.

A piece's work ends with `Piece.complete` in the piece's own transaction: the mark that the
piece is done (only while this worker still holds its lease), the job's progress, the pieces the
work found next, and the job's end when none is left. So a piece is applied once and whole:
a worker that lost its lease (it stalled, its replica died) commits nothing, and the piece goes
to the next worker that takes it. A job is shown running only while some worker holds a live
lease on one of its pieces; no job can stay running after its replica died.

What each kind of job does per piece is a step (`@step(kind, name)`) registered by the module
that owns the work (activation, simulation, hand-over, reclaim).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.config import Settings
from territory_service.db import utcnow
from territory_service.errors import ConcurrentUpdate, DatabaseUnavailable
from territory_service.jobs.models import Job, JobKind, JobPiece, JobStatus
from territory_service.logs import request_id_var
from territory_service.transaction import transaction

logger = logging.getLogger(__name__)

Step = Callable[["Piece"], Awaitable[None]]
_STEPS: dict[tuple[JobKind, str], Step] = {}
# A piece that lost a race (a deadlock) this many times fails its job.
ATTEMPTS = 5


def step(kind: JobKind, name: str) -> Callable[[Step], Step]:
    """Register what a piece of step `name` of a `kind` job does."""

    def register(work: Step) -> Step:
        _STEPS[(kind, name)] = work
        return work

    return register


class LeaseLost(Exception):
    """This worker no longer holds the piece's lease (or its job ended): commit nothing."""


@dataclass(frozen=True)
class NewPiece:
    step: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Piece:
    """A piece of a job, leased by `holder`, with what its step needs."""

    job_id: uuid.UUID
    number: int
    step: str
    payload: dict[str, Any]
    attempts: int
    kind: JobKind
    params: dict[str, Any]
    subject_id: uuid.UUID | None
    holder: str
    session_factory: async_sessionmaker[AsyncSession]
    settings: Settings

    def still_held(self) -> ColumnElement[bool]:
        """This piece, while its lease is still this worker's and it is not done."""
        return and_(
            JobPiece.job_id == self.job_id,
            JobPiece.number == self.number,
            JobPiece.lease_holder == self.holder,
            JobPiece.done_at.is_(None),
        )

    async def complete(
        self,
        session: AsyncSession,
        *,
        done: int = 0,
        total: int | None = None,
        result: dict[str, Any] | None = None,
        more: Sequence[NewPiece] = (),
    ) -> Job:
        """In the piece's transaction, as its last statements: mark it done, count `done`
        items more, add `result`'s counts to the job's, queue `more` pieces, and end the job
        when no piece is left. Raises `LeaseLost` (roll back) if the lease went elsewhere or
        the job ended meanwhile."""
        marked = await session.execute(
            update(JobPiece)
            .where(self.still_held())
            .values(done_at=utcnow(), lease_holder=None, lease_expires_at=None)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost()
        job = await session.get(Job, self.job_id, with_for_update=True, populate_existing=True)
        if job is None or job.status is not JobStatus.QUEUED:
            raise LeaseLost()
        if more:
            last = await session.scalar(
                select(func.max(JobPiece.number)).where(JobPiece.job_id == self.job_id)
            )
            session.add_all(
                JobPiece(job_id=self.job_id, number=(last or 0) + n, step=p.step, payload=p.payload)
                for n, p in enumerate(more, start=1)
            )
            await session.flush()
        left = await session.scalar(
            select(func.count())
            .select_from(JobPiece)
            .where(JobPiece.job_id == self.job_id, JobPiece.done_at.is_(None))
        )
        job.done += done
        if total is not None:
            job.total = total
        job.result = _added(job.result, result or {})
        if not left:
            job.status = JobStatus.SUCCEEDED
            job.total = job.done = max(job.total, job.done)
            job.finished_at = utcnow()
        await session.flush()
        return job


def _added(before: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Counts add up; anything else is replaced."""
    after = dict(before)
    for key, value in more.items():
        old = after.get(key)
        both_counts = isinstance(value, int) and isinstance(old, int)
        after[key] = old + value if both_counts and not isinstance(value, bool) else value
    return after


class Finished:
    """Wakes those waiting for any worker of this process to finish a piece (an event per
    event loop: tests run several)."""

    def __init__(self) -> None:
        self._events: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = (
            weakref.WeakKeyDictionary()
        )

    def notify(self) -> None:
        for event in self._events.values():
            event.set()

    async def wait(self, *, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        event = self._events.setdefault(loop, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        event.clear()


pieces_finished = Finished()


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Takes pieces one at a time until stopped. Several workers (replicas) share the jobs."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        holder: str | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.holder = holder or replica_name()
        self.lease = dt.timedelta(seconds=settings.job_lease_seconds)
        self._wake = asyncio.Event()
        self._stopping = False
        self._current: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look for work now rather than at the next poll (a job was queued here)."""
        self._wake.set()

    async def run(self) -> None:
        """Take and work pieces until `stop`; between jobs, look every `job_poll_seconds`."""
        while not self._stopping:
            try:
                worked = await self.run_one()
            except (DatabaseUnavailable, ConcurrentUpdate, OSError):
                logger.warning("the worker could not reach the database; it tries again")
                worked = False
            except Exception:
                logger.exception("the worker failed to take a piece; it tries again")
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.job_poll_seconds)
                self._wake.clear()

    async def run_one(self) -> bool:
        """Take one piece and work it; False when there was none to take."""
        piece = await self._take()
        if piece is None:
            return False
        self._current = asyncio.create_task(self._work(piece), name=f"piece-{piece.job_id}")
        try:
            await asyncio.shield(self._current)
        finally:
            self._current = None
        return True

    async def stop(self) -> None:
        """Take no more pieces; give back the one in hand at once, for another worker."""
        self._stopping = True
        self._wake.set()
        current = self._current
        if current is not None:
            current.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await current
        with contextlib.suppress(Exception):
            await self._release(self.holder)

    async def _take(self) -> Piece | None:
        async with self.session_factory() as session, transaction(session, resource="job"):
            now = utcnow()
            free = or_(JobPiece.lease_expires_at.is_(None), JobPiece.lease_expires_at < now)
            found = (
                await session.execute(
                    select(JobPiece, Job)
                    .join(Job, Job.id == JobPiece.job_id)
                    .where(
                        JobPiece.done_at.is_(None),
                        free,
                        Job.status == JobStatus.QUEUED,
                        or_(Job.run_at.is_(None), Job.run_at <= now),
                    )
                    .order_by(Job.created_at, JobPiece.job_id, JobPiece.number)
                    .limit(1)
                    .with_for_update(of=JobPiece, skip_locked=True)
                )
            ).first()
            if found is None:
                return None
            piece, job = found
            attempts = piece.attempts + 1
            taken = await session.execute(
                update(JobPiece)
                .where(JobPiece.job_id == piece.job_id, JobPiece.number == piece.number, free)
                .values(
                    lease_holder=self.holder,
                    lease_expires_at=now + self.lease,
                    attempts=attempts,
                )
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another worker took it in between (SQLite has no SKIP LOCKED)
            if job.started_at is None:
                job.started_at = now
            return Piece(
                job_id=piece.job_id,
                number=piece.number,
                step=piece.step,
                payload=dict(piece.payload),
                attempts=attempts,
                kind=job.kind,
                params=dict(job.params),
                subject_id=job.subject_id,
                holder=self.holder,
                session_factory=self.session_factory,
                settings=self.settings,
            )

    async def _work(self, piece: Piece) -> None:
        work = _STEPS[(piece.kind, piece.step)]

        async def attributed() -> None:
            request_id_var.set(piece.params.get("request_id"))  # this task's own context
            await work(piece)

        running = asyncio.create_task(attributed())
        heartbeat = asyncio.create_task(self._heartbeat(piece, running))
        try:
            await running
        except LeaseLost:
            logger.info("a piece went to another worker", extra={"job_id": str(piece.job_id)})
        except asyncio.CancelledError:
            if self._stopping:  # `stop` releases the lease once the work has rolled back
                logger.info("handed a piece back", extra={"job_id": str(piece.job_id)})
                raise
            logger.warning("lost the lease of a piece", extra={"job_id": str(piece.job_id)})
        except (ConcurrentUpdate, DatabaseUnavailable) as exc:
            await self._retry_later(piece, exc)
        except Exception as exc:
            logger.exception("a job failed", extra={"job_id": str(piece.job_id)})
            await fail(self.session_factory, piece.job_id, f"{type(exc).__name__}: {exc}")
        finally:
            heartbeat.cancel()
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.gather(heartbeat, running)
            pieces_finished.notify()

    async def _heartbeat(self, piece: Piece, running: asyncio.Task[None]) -> None:
        """Renew the lease every third of it. If it cannot be renewed before it ends (another
        worker may take the piece from then on), stop the work: its transaction rolls back."""
        beat = self.lease.total_seconds() / 3
        renewed = utcnow()
        while True:
            await asyncio.sleep(beat)
            try:
                async with self.session_factory() as session, transaction(session, resource="job"):
                    kept = await session.execute(
                        update(JobPiece)
                        .where(piece.still_held())
                        .values(lease_expires_at=utcnow() + self.lease)
                    )
                if kept.rowcount != 1:  # type: ignore[attr-defined]
                    running.cancel()
                    return
                renewed = utcnow()
            except Exception:
                logger.warning("could not renew a lease", extra={"job_id": str(piece.job_id)})
                if utcnow() - renewed >= self.lease and not self.settings.is_sqlite:
                    running.cancel()
                    return

    async def _retry_later(self, piece: Piece, exc: Exception) -> None:
        """Give the piece back for another try. Lost races count against `ATTEMPTS`; the
        database being away does not (the job waits for it, however long)."""
        if isinstance(exc, ConcurrentUpdate) and piece.attempts >= ATTEMPTS:
            await fail(self.session_factory, piece.job_id, f"{type(exc).__name__}: {exc}")
            return
        with contextlib.suppress(Exception):
            await self._release(self.holder, piece)

    async def _release(self, holder: str, piece: Piece | None = None) -> None:
        async with self.session_factory() as session, transaction(session, resource="job"):
            statement = update(JobPiece).where(
                JobPiece.lease_holder == holder, JobPiece.done_at.is_(None)
            )
            if piece is not None:
                statement = statement.where(
                    JobPiece.job_id == piece.job_id, JobPiece.number == piece.number
                )
            await session.execute(statement.values(lease_holder=None, lease_expires_at=None))


async def fail(
    session_factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID, error: str
) -> None:
    """End a job as failed (its pieces stay as they were: what they applied, they applied)."""
    async with session_factory() as session, transaction(session, resource="job"):
        job = await session.get(Job, job_id, with_for_update=True)
        if job is not None and job.status is JobStatus.QUEUED:
            job.status = JobStatus.FAILED
            job.error = error[:2000]
            job.finished_at = utcnow()
