"""Activating a rule set: the state change now, the re-resolution of every customer as a job.

The job walks the customers in id order in bounded chunks, each chunk one transaction through
the same resolution path a single customer takes, so a bulk run and one-by-one resolution agree.
Only rows that change are written, each with its event; locked customers stay (and drift is
logged); running it again changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.conflicts.recorder import record_signals
from territory_service.customers.repository import CustomerRepository
from territory_service.db import utcnow
from territory_service.errors import ConcurrentUpdate, Conflict, ServiceError
from territory_service.heap import collector_paused
from territory_service.jobs import service as jobs
from territory_service.jobs.models import Job, JobKind, JobStatus
from territory_service.jobs.repository import JobRepository
from territory_service.ownership.pool_run import Change, Decided, PoolRun, decide_all
from territory_service.ownership.pool_writes import write_changes
from territory_service.ownership.resolver import resolve_customers
from territory_service.rulesets.compiled import compiled
from territory_service.rulesets.models import RuleSet, RuleSetState
from territory_service.rulesets.repository import RuleSetRepository
from territory_service.rulesets.schemas import ValidationReport
from territory_service.rulesets.service import report_for
from territory_service.security.principal import Principal
from territory_service.transaction import transaction

CHUNK = 5000
BATCH_CUSTOMERS = 50_000
CHUNK_ATTEMPTS = 3


class ActivationRunning(Conflict):
    slug = "activation-running"
    title = "Another activation is running"

    def __init__(self, job_id: uuid.UUID | None) -> None:
        super().__init__(
            "a rule set is being activated; wait for its job to finish",
            job_id=None if job_id is None else str(job_id),
        )


class InvalidRuleSet(ServiceError):
    status = 422
    slug = "ruleset-invalid"
    title = "The rule set does not pass validation"

    def __init__(self, report: ValidationReport) -> None:
        errors = [issue for issue in report.issues if issue.severity == "error"]
        super().__init__(
            "; ".join(issue.message for issue in errors[:5]),
            issues=[issue.model_dump(mode="json") for issue in errors],
        )


async def start_activation(
    session: AsyncSession,
    session_factory: async_sessionmaker[AsyncSession],
    *,
    ruleset_id: uuid.UUID,
    principal: Principal,
) -> Job:
    repository = JobRepository(session)

    async def explain() -> None:
        running = await repository.unfinished(JobKind.ACTIVATION)
        raise ActivationRunning(running.id if running else None)

    async with transaction(session, resource="rule set", explain_integrity_error=explain):
        running = await repository.unfinished(JobKind.ACTIVATION, for_update=True)
        if running is not None:
            if not jobs.is_abandoned(running):
                raise ActivationRunning(running.id)
            await repository.update(
                running,
                {"status": JobStatus.FAILED, "error": "abandoned", "finished_at": utcnow()},
            )
        ruleset = await _make_active(session, ruleset_id)
        job = await repository.add(
            Job(kind=JobKind.ACTIVATION, subject_id=ruleset.id, created_by_key_id=principal.key_id)
        )
    reason = f"rule set {ruleset.number} activated"

    async def report(**changes: Any) -> None:
        await jobs.report(session_factory, job.id, **changes)

    async def work() -> dict[str, Any]:
        return await re_resolve_all(
            session_factory, actor=principal, reason=reason, progress=report
        )

    jobs.start(session_factory, job.id, work)
    return job


async def _make_active(session: AsyncSession, ruleset_id: uuid.UUID) -> RuleSet:
    rulesets = RuleSetRepository(session)
    ruleset = await rulesets.get_or_raise(ruleset_id, for_update=True)
    if ruleset.state is RuleSetState.ARCHIVED:
        raise Conflict(f"rule set {ruleset.number} is archived; copy it into a new draft")
    if ruleset.state is RuleSetState.DRAFT:
        report = await report_for(session, ruleset)
        if not report.valid:
            raise InvalidRuleSet(report)
        active = await rulesets.active(for_update=True)
        now = utcnow()
        if active is not None:
            await rulesets.update(active, {"state": RuleSetState.ARCHIVED, "archived_at": now})
        await rulesets.update(ruleset, {"state": RuleSetState.ACTIVE, "activated_at": now})
    return ruleset


Progress = Callable[..., Awaitable[None]]


async def re_resolve_all(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    actor: Principal | None,
    reason: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Resolve every customer with the active rule set; `progress(total=...)`, then
    `progress(done=...)` after each chunk is written.

    Each chunk is written in a transaction of its own while the next one is being decided, so
    the database works on one core while the engine works on the other. A transaction writes
    up to `CHUNK` changes, or the outcome of `BATCH_CUSTOMERS` customers when few change."""
    async with session_factory() as session, transaction(session, resource="customer"):
        active = await RuleSetRepository(session).active()
        if active is None:
            return {"customers": 0, "changed": 0}
        run = await PoolRun.prepare(session, await compiled(session, active))
        total = await CustomerRepository(session).count()
    if progress is not None:
        await progress(total=total)
    done = changed = 0
    writing: asyncio.Task[int] | None = None

    async def write(batch: Decided) -> None:
        """Start writing `batch` once the previous write has finished."""
        nonlocal writing, done, changed
        if writing is not None:
            changed += await writing
            if progress is not None:
                await progress(done=done)
        writing = asyncio.create_task(_write_chunk(session_factory, run, batch, actor, reason))
        done += batch.customers

    with collector_paused():
        try:
            batch = Decided()
            async for decided in decide_all(session_factory, run, chunk=CHUNK):
                batch.absorb(decided)
                if len(batch.changes) >= CHUNK or batch.customers >= BATCH_CUSTOMERS:
                    await write(batch)
                    batch = Decided()
            if batch.customers:
                await write(batch)
            if writing is not None:
                changed += await writing
                if progress is not None:
                    await progress(done=done)
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
    return {"customers": done, "changed": changed}


async def _write_chunk(
    session_factory: async_sessionmaker[AsyncSession],
    run: PoolRun,
    decided: Decided,
    actor: Principal | None,
    reason: str,
) -> int:
    """Write one decided chunk with its conflicts; return the rows changed. The writes are
    compare-and-sets, so a transaction that failed is simply tried again."""
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            changed, lost = await _write_once(session_factory, run, decided, actor, reason)
        except ConcurrentUpdate:
            if attempt == CHUNK_ATTEMPTS:
                raise
        else:
            run.undo(lost)
            return changed
    raise AssertionError("CHUNK_ATTEMPTS must be at least 1")


async def _write_once(
    session_factory: async_sessionmaker[AsyncSession],
    run: PoolRun,
    decided: Decided,
    actor: Principal | None,
    reason: str,
) -> tuple[int, list[Change]]:
    """One transaction. Rows a concurrent writer changed since they were read are not
    overwritten: they are resolved again under a row lock, and returned as lost."""
    async with session_factory() as session, transaction(session, resource="customer"):
        lost = await write_changes(session, decided.changes, actor=actor, reason=reason)
        changed = len(decided.changes) - len(lost)
        if lost:
            customers = await CustomerRepository(session).by_ids({c.customer_id for c in lost})
            resolved = await resolve_customers(session, customers, actor=actor, reason=reason)
            changed += resolved.changed
        await record_signals(session, decided.signals, ruleset_version=run.ruleset.spec.version)
    return changed, lost
