"""Activating a rule set: the state change now, the re-division of every customer as a job.

The job has two steps (`jobs/worker.py`), each of which any replica may take up:

1. **plan**: one pass over the pool (`ownership/pool_run.py`) decides every customer in id
   order, as resolving them one by one would, and stores the changes (`planned_changes`) in
   pieces; the conflicts it raises are recorded, and the pieces queued, with the mark that
   planning is done. A plan interrupted half-way is made again from the start.
2. **apply**, one per piece: the piece's changes and their events in one transaction with the
   mark that the piece is done, each row a compare-and-set on the version it was planned from.
   A row changed since is resolved again under its row lock.

So an interrupted or shared job gives the owners an uninterrupted one gives. Only rows that
change are written; locked customers stay (and drift is logged); running it again changes
nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.config import Settings
from territory_service.conflicts.recorder import record_signals
from territory_service.customers.repository import CustomerRepository
from territory_service.db import utcnow
from territory_service.engine.resolution import ConflictSignal
from territory_service.errors import Conflict, ServiceError
from territory_service.heap import collector_paused
from territory_service.jobs import service as jobs
from territory_service.jobs.models import Job, JobKind, JobPiece, JobStatus
from territory_service.jobs.repository import JobRepository
from territory_service.jobs.worker import NewPiece, Piece, step
from territory_service.ownership.changes import Attribution
from territory_service.ownership.pool_run import Decided, PoolRun, decide_all
from territory_service.ownership.pool_writes import (
    applied_before,
    apply_planned,
    forget_pieces,
    forget_plans,
    plan_changes,
    plan_stored,
)
from territory_service.ownership.resolver import resolve_customers
from territory_service.rulesets.compiled import compiled
from territory_service.rulesets.models import RuleSet, RuleSetState
from territory_service.rulesets.repository import RuleSetRepository
from territory_service.rulesets.schemas import ValidationReport
from territory_service.rulesets.service import report_for
from territory_service.security.principal import Principal
from territory_service.transaction import transaction

# Customers read and decided per statement.
CHUNK = 5000


class ActivationRunning(Conflict):
    slug = "activation-running"
    title = "Another activation is running"

    def __init__(self, job_id: uuid.UUID | None) -> None:
        super().__init__(
            "a rule set is being activated; wait for its job to finish",
            job_id=None if job_id is None else str(job_id),
        )


class NotAhead(ServiceError):
    status = 422
    slug = "effective-at-passed"
    title = "The time given has passed"


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
    *,
    ruleset_id: uuid.UUID,
    principal: Principal,
    effective_at: dt.datetime | None = None,
) -> Job:
    """Make the rule set active now and queue its re-division, or, given `effective_at`,
    schedule both for then (see the module's docstring)."""
    repository = JobRepository(session)

    async def explain() -> None:
        running = await repository.unfinished(JobKind.ACTIVATION)
        raise ActivationRunning(running.id if running else None)

    async with transaction(session, resource="rule set", explain_integrity_error=explain):
        running = await repository.unfinished(JobKind.ACTIVATION, for_update=True)
        if running is not None:
            raise ActivationRunning(running.id)
        if effective_at is not None and effective_at <= utcnow():
            raise NotAhead(
                "effective_at is not in the future; leave it out to activate now",
                errors=[
                    {"location": "query", "parameter": "effective_at", "detail": "must lie ahead"}
                ],
            )
        if effective_at is None:
            ruleset, first = await _make_active(session, ruleset_id), NewPiece(PLAN)
        else:
            ruleset, first = await _schedule(session, ruleset_id, effective_at), NewPiece(ACTIVATE)
        job = await jobs.enqueue(
            session,
            Job(
                kind=JobKind.ACTIVATION,
                subject_id=ruleset.id,
                created_by_key_id=principal.key_id,
                run_at=effective_at,
                params=jobs.caller_params(principal, f"rule set {ruleset.number} activated"),
            ),
            first,
        )
    jobs.notify()
    return job


async def _schedule(session: AsyncSession, ruleset_id: uuid.UUID, at: dt.datetime) -> RuleSet:
    rulesets = RuleSetRepository(session)
    ruleset = await rulesets.get_or_raise(ruleset_id, for_update=True)
    if ruleset.state is not RuleSetState.DRAFT:
        raise Conflict(
            f"rule set {ruleset.number} is {ruleset.state.value}; only a draft can be scheduled"
        )
    await _check_valid(session, ruleset)
    return await rulesets.update(ruleset, {"state": RuleSetState.SCHEDULED, "scheduled_for": at})


async def _check_valid(session: AsyncSession, ruleset: RuleSet) -> None:
    report = await report_for(session, ruleset)
    if not report.valid:
        raise InvalidRuleSet(report)


async def re_divide_now(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, *, reason: str
) -> Job:
    """Re-divide the pool by the active rule set now, in this process (the demo loader, the
    benchmarks): the activation's job, queued and worked to its end here."""
    async with session_factory() as session, transaction(session, resource="rule set"):
        active = await RuleSetRepository(session).active()
        job = await jobs.enqueue(
            session,
            Job(
                kind=JobKind.ACTIVATION,
                subject_id=None if active is None else active.id,
                params=jobs.caller_params(None, reason),
            ),
            NewPiece(PLAN),
        )
    await jobs.work_to_end(session_factory, settings)
    async with session_factory() as session:
        done = await session.get(Job, job.id, populate_existing=True)
        assert done is not None
        return done


async def _make_active(session: AsyncSession, ruleset_id: uuid.UUID) -> RuleSet:
    rulesets = RuleSetRepository(session)
    ruleset = await rulesets.get_or_raise(ruleset_id, for_update=True)
    if ruleset.state is RuleSetState.ARCHIVED:
        raise Conflict(f"rule set {ruleset.number} is archived; copy it into a new draft")
    if ruleset.state in (RuleSetState.DRAFT, RuleSetState.SCHEDULED):
        await _check_valid(session, ruleset)
        active = await rulesets.active(for_update=True)
        now = utcnow()
        if active is not None:
            await rulesets.update(active, {"state": RuleSetState.ARCHIVED, "archived_at": now})
        await rulesets.update(
            ruleset, {"state": RuleSetState.ACTIVE, "activated_at": now, "scheduled_for": None}
        )
    return ruleset


ACTIVATE, PLAN, APPLY = "activate", "plan", "apply"


@step(JobKind.ACTIVATION, ACTIVATE)
async def activate_on_time(piece: Piece) -> None:
    """A scheduled activation, on time: the rule set becomes active, and the planning is
    queued with the mark that this is done."""
    assert piece.subject_id is not None
    async with piece.session_factory() as session, transaction(session, resource="rule set"):
        ruleset = await RuleSetRepository(session).get_or_raise(piece.subject_id)
        if ruleset.state is not RuleSetState.SCHEDULED:
            raise Conflict(f"rule set {ruleset.number} is no longer scheduled")
        await _make_active(session, ruleset.id)
        await piece.complete(session, more=[NewPiece(PLAN)])


@step(JobKind.ACTIVATION, PLAN)
async def plan(piece: Piece) -> None:
    """Decide every customer with the active rule set and store the changes in pieces, each
    queued as soon as it is stored so that other workers apply it while the pass goes on; the
    conflicts are recorded with the mark that planning is done.

    Each piece's changes are stored in a transaction of their own while the next customers are
    decided. A piece holds up to `activation_piece_changes` changes, or
    `activation_piece_customers` customers when few change.

    An attempt that stopped half-way leaves pieces applied and pieces not. This one drops the
    latter, and decides with the customers the former moved seen where they were before, so it
    decides exactly as the first attempt did; what was applied is not stored again."""
    factory, settings, generation = piece.session_factory, piece.settings, piece.attempts
    async with factory() as session, transaction(session, resource="customer"):
        done, applied = await _drop_what_was_not_applied(session, piece.job_id)
        undo = await applied_before(session, job_id=piece.job_id, pieces=applied)
        active = await RuleSetRepository(session).active()
        ruleset = None if active is None else await compiled(session, active)
        run = None if ruleset is None else await PoolRun.prepare(session, ruleset, undo=undo)
        total = await CustomerRepository(session).count()
        numbers = itertools.count(await _next_piece_number(session, piece.job_id))
    await jobs.progress(factory, piece.job_id, total=total)
    signals: list[ConflictSignal] = []
    writing: asyncio.Task[None] | None = None
    at = utcnow()

    async def store(batch: Decided) -> None:
        if (str(batch.first), str(batch.last)) in done:
            return  # an earlier attempt applied this piece
        changes = [c for c in batch.changes if undo.get(c.customer_id, (None, None))[1] != c.after]
        async with factory() as session, transaction(session, resource="customer"):
            number = next(numbers)
            await plan_changes(
                session, changes, job_id=piece.job_id, generation=generation, piece=number, at=at
            )
            payload = _piece_payload(generation, number, batch)
            session.add(JobPiece(job_id=piece.job_id, number=number, step=APPLY, payload=payload))
            if number == 1:
                await plan_stored(session)  # statistics for the pieces applied meanwhile
        jobs.notify()

    async def write(batch: Decided) -> None:
        nonlocal writing
        if writing is not None:
            await writing
        signals.extend(batch.signals)
        writing = asyncio.create_task(store(batch))

    if run is not None:
        with collector_paused():
            try:
                batch = Decided()
                chunk = min(CHUNK, settings.activation_piece_customers)
                async for decided in decide_all(factory, run, chunk=chunk):
                    batch.absorb(decided)
                    full = len(batch.changes) >= settings.activation_piece_changes
                    if full or batch.customers >= settings.activation_piece_customers:
                        await write(batch)
                        batch = Decided()
                if batch.customers:
                    await write(batch)
                if writing is not None:
                    await writing
            finally:
                if writing is not None and not writing.done():
                    writing.cancel()
    async with factory() as session, transaction(session, resource="customer"):
        if run is not None:
            await record_signals(session, signals, ruleset_version=run.ruleset.spec.version)
        applied = {p.number for p in await _applied_pieces(session, piece.job_id)}
        await forget_pieces(session, job_id=piece.job_id, pieces=applied)  # no longer needed
        job = await piece.complete(session, total=total, result={"customers": 0, "changed": 0})
        await _forget_when_ended(session, job)


async def _drop_what_was_not_applied(
    session: AsyncSession, job_id: uuid.UUID
) -> tuple[set[tuple[str, str]], set[int]]:
    """Drop the pieces earlier attempts queued and nobody applied, then their rows (in the
    order a worker applying one locks them); return the ranges and numbers of those applied."""
    await session.execute(
        delete(JobPiece).where(
            JobPiece.job_id == job_id, JobPiece.step == APPLY, JobPiece.done_at.is_(None)
        )
    )
    applied = await _applied_pieces(session, job_id)
    await forget_pieces(session, job_id=job_id, pieces={p.number for p in applied}, keep=True)
    ranges = {(p.payload["first_customer_id"], p.payload["last_customer_id"]) for p in applied}
    return ranges, {p.number for p in applied}


async def _applied_pieces(session: AsyncSession, job_id: uuid.UUID) -> Sequence[JobPiece]:
    done = JobPiece.done_at.is_not(None)
    return (
        await session.scalars(
            select(JobPiece).where(JobPiece.job_id == job_id, JobPiece.step == APPLY, done)
        )
    ).all()


async def _next_piece_number(session: AsyncSession, job_id: uuid.UUID) -> int:
    last = await session.scalar(select(func.max(JobPiece.number)).where(JobPiece.job_id == job_id))
    return (last or 0) + 1


async def _forget_when_ended(session: AsyncSession, job: Job) -> None:
    """The piece that ends the job drops its plans with it."""
    if job.status is JobStatus.SUCCEEDED:
        await forget_plans(session, job_id=job.id)


def _piece_payload(generation: int, number: int, batch: Decided) -> dict[str, Any]:
    """What an apply piece needs, and what a cancelled job reports of it (which customers)."""
    return {
        "generation": generation,
        "plan_piece": number,
        "customers": batch.customers,
        "first_customer_id": str(batch.first),
        "last_customer_id": str(batch.last),
    }


@step(JobKind.ACTIVATION, APPLY)
async def apply(piece: Piece) -> None:
    """Write one piece of the plan. Rows a concurrent writer changed since the plan read them
    are not overwritten: they are resolved again under a row lock."""
    payload, actor = piece.payload, jobs.actor_of(piece.params)
    reason = piece.params["reason"]
    async with piece.session_factory() as session, transaction(session, resource="customer"):
        planned = await session.scalar(
            select(JobPiece.done_at).where(JobPiece.job_id == piece.job_id, JobPiece.number == 0)
        )
        changed, lost = await apply_planned(
            session,
            job_id=piece.job_id,
            generation=payload["generation"],
            piece=payload["plan_piece"],
            by=Attribution.of(reason=reason, actor=actor),
            keep=planned is None,  # a new attempt at the plan would need its rows
        )
        if lost:
            customers = await CustomerRepository(session).by_ids(lost)
            resolved = await resolve_customers(session, customers, actor=actor, reason=reason)
            changed += resolved.changed
        customers = payload["customers"]
        job = await piece.complete(
            session, done=customers, result={"customers": customers, "changed": changed}
        )
        await _forget_when_ended(session, job)


async def _on_cancel(session: AsyncSession, job: Job) -> None:
    """A cancelled activation says which customers still wait for the new rule set: those of
    the pieces not applied (every customer, if planning had not finished). A scheduled one is
    cancelled before it began: its rule set is a draft again."""
    if job.subject_id is not None:
        rulesets = RuleSetRepository(session)
        ruleset = await rulesets.get(job.subject_id, for_update=True)
        if ruleset is not None and ruleset.state is RuleSetState.SCHEDULED:
            await rulesets.update(ruleset, {"state": RuleSetState.DRAFT, "scheduled_for": None})
            return
    pieces = (
        await session.scalars(
            select(JobPiece).where(JobPiece.job_id == job.id).order_by(JobPiece.number)
        )
    ).all()
    waiting = [p.payload for p in pieces if p.step == APPLY and p.done_at is None]
    planned = any(p.step == PLAN and p.done_at is not None for p in pieces)
    ranges = [
        {k: p[k] for k in ("first_customer_id", "last_customer_id", "customers")} for p in waiting
    ]
    job.result = {
        "customers": 0,
        "changed": 0,
        **job.result,
        "waiting": job.total - job.done,
        "waiting_ranges": ranges if planned else None,
    }
    await forget_plans(session, job_id=job.id)


jobs.on_cancel(JobKind.ACTIVATION, _on_cancel)
