"""Automatic reclaim: owned customers nobody followed up for too long return to the pool.

A customer's reclaim clock runs from the later of its last reported follow-up and the start of
its current owner's hold (`held_since`, which transfers, hand-overs and merges keep). Its
territory's rules in force say after how many days (per tier), and which tags exempt it.

A run works in chunks of customers in id order, each one transaction: it finds the due ones,
locks their ownership rows, checks again on the locked rows (a concurrent run, claim or
follow-up may have changed them), and moves each still-due customer to its territory's pool
(locked, source `reclaim`) with its event. Each chunk is a piece of the run's job, so any
replica carries a run on (`jobs/worker.py`). A schedule inside every replica queues a run;
one unfinished run at a time (a unique index), so a manual run and the scheduled one never
overlap.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.customers.models import Customer
from territory_service.errors import ConcurrentUpdate, Conflict, InvalidCursor, OutOfScope
from territory_service.jobs import service as jobs
from territory_service.jobs.models import Job, JobKind
from territory_service.jobs.repository import JobRepository
from territory_service.jobs.worker import NewPiece, Piece, step
from territory_service.ownership.models import Ownership, OwnershipSource
from territory_service.ownership.repository import OwnershipRepository
from territory_service.pagination import Page, decode_cursor, encode_cursor
from territory_service.pool.inherited_rules import EffectiveRules, effective_rules
from territory_service.security.principal import Principal
from territory_service.territories.repository import in_subtrees
from territory_service.transaction import transaction

logger = logging.getLogger(__name__)

CHUNK = 500

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Due:
    customer_id: uuid.UUID
    owner_id: uuid.UUID
    territory_id: uuid.UUID
    tier: str | None
    last_activity_at: dt.datetime | None
    held_since: dt.datetime | None
    reclaim_at: dt.datetime


def _clock_start() -> ColumnElement[Any]:
    """When the customer's reclaim clock last restarted."""
    hold = func.coalesce(Ownership.held_since, Ownership.assigned_at)
    return case((Customer.last_activity_at > hold, Customer.last_activity_at), else_=hold)


def _profiles(
    rules: dict[uuid.UUID, EffectiveRules],
) -> dict[tuple[int | None, tuple[tuple[str, int], ...]], list[uuid.UUID]]:
    """Territories grouped by their reclaim days, so each group is one query."""
    groups: dict[tuple[int | None, tuple[tuple[str, int], ...]], list[uuid.UUID]] = defaultdict(
        list
    )
    for territory_id, effective in rules.items():
        if effective.reclaims:
            by_tier = tuple(sorted((effective.reclaim_after_days_by_tier or {}).items()))
            groups[(effective.reclaim_after_days, by_tier)].append(territory_id)
    return groups


async def due(
    session: AsyncSession,
    rules: dict[uuid.UUID, EffectiveRules],
    *,
    by: dt.datetime,
    after: uuid.UUID | None = None,
    only: Sequence[uuid.UUID] | None = None,
    owner_id: uuid.UUID | None = None,
    roots: frozenset[uuid.UUID] | None = None,
    limit: int = CHUNK,
) -> tuple[list[Due], uuid.UUID | None]:
    """Owned customers whose reclaim falls at or before `by`, exempt ones left out, in id order
    after `after`; and the last id looked at (for the next page), None at the end."""
    clock = _clock_start()
    found: list[tuple[Any, ...]] = []
    for (days, by_tier), territory_ids in _profiles(rules).items():
        tiers = dict(by_tier)
        due_by_tier = [
            and_(Customer.tier == tier, clock <= by - dt.timedelta(days=d))
            for tier, d in tiers.items()
        ]
        if days is not None:
            cut = clock <= by - dt.timedelta(days=days)
            if tiers:  # tiers with days of their own are handled above
                cut = and_(or_(Customer.tier.is_(None), Customer.tier.not_in(tiers)), cut)
            due_by_tier.append(cut)
        statement = (
            select(
                Ownership.customer_id,
                Ownership.owner_id,
                Ownership.territory_id,
                Customer.tier,
                Customer.tags,
                Customer.last_activity_at,
                Ownership.held_since,
                clock,
            )
            .join(Customer, Customer.id == Ownership.customer_id)
            .where(
                Ownership.territory_id.in_(territory_ids),
                Ownership.owner_id.is_not(None),
                or_(*due_by_tier),
            )
            .order_by(Ownership.customer_id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(Ownership.customer_id > after)
        if only is not None:
            statement = statement.where(Ownership.customer_id.in_(only))
        if owner_id is not None:
            statement = statement.where(Ownership.owner_id == owner_id)
        if roots is not None:
            statement = statement.where(in_subtrees(Ownership.territory_id, roots))
        found.extend((await session.execute(statement)).all())
    found.sort(key=lambda row: row[0])
    page = found[:limit]
    last = page[-1][0] if len(page) == limit else None
    result = []
    for customer_id, owner, territory_id, tier, tags, activity, held, start in page:
        effective = rules[territory_id]
        days_for_tier = effective.reclaim_days(tier)
        if days_for_tier is None or effective.is_exempt(tags or ()):
            continue
        result.append(
            Due(
                customer_id,
                owner,
                territory_id,
                tier,
                activity,
                held,
                start + dt.timedelta(days=days_for_tier),
            )
        )
    return result, last


async def due_page(
    session: AsyncSession,
    *,
    now: dt.datetime,
    owner_id: uuid.UUID | None,
    territory_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
    principal: Principal,
) -> Page[Due]:
    """Customers to be reclaimed within their territory's reminder window (or overdue)."""
    async with transaction(session, resource="pool"):
        rules = await effective_rules(session)
        if territory_id is not None:
            wanted = set(
                await session.scalars(
                    select(Ownership.territory_id.distinct()).where(
                        in_subtrees(Ownership.territory_id, frozenset({territory_id}))
                    )
                )
            )
            rules = {t: r for t, r in rules.items() if t in wanted}
        after = None if cursor is None else decode_cursor(cursor)
        if after is not None and not isinstance(after, uuid.UUID):
            raise InvalidCursor()
        window = max((r.reminder for r in rules.values() if r.reclaims), default=dt.timedelta())
        items, last = await due(
            session,
            rules,
            by=now + window,
            after=after,
            owner_id=owner_id,
            roots=principal.territory_ids,
            limit=limit,
        )
        # Each territory warns only within its own window.
        items = [i for i in items if i.reclaim_at <= now + rules[i.territory_id].reminder]
        return Page(items=items, next_cursor=None if last is None else encode_cursor(last))


SWEEP = "sweep"


@step(JobKind.RECLAIM, SWEEP)
async def sweep(piece: Piece) -> None:
    """One chunk of customers in id order after the piece's cursor, with the mark that it is
    done, and the next chunk queued until the last customer."""
    now = dt.datetime.fromisoformat(piece.params["now"])
    after = piece.payload.get("after")
    async with piece.session_factory() as session, transaction(session, resource="ownership"):
        rules = await effective_rules(session)
        start = None if after is None else uuid.UUID(after)
        candidates, last = await due(session, rules, by=now, after=start)
        taken = await _reclaim(
            session, rules, candidates, now=now, actor=jobs.actor_of(piece.params)
        )
        more = [] if last is None else [NewPiece(SWEEP, {"after": str(last)})]
        await piece.complete(session, done=len(candidates), result={"reclaimed": taken}, more=more)


async def _reclaim(
    session: AsyncSession,
    rules: dict[uuid.UUID, EffectiveRules],
    candidates: list[Due],
    *,
    now: dt.datetime,
    actor: Principal | None,
) -> int:
    if not candidates:
        return 0
    ids = [c.customer_id for c in candidates]
    ownerships = OwnershipRepository(session)
    locked = await ownerships.of_customers(set(ids), for_update=True)
    still, _ = await due(session, rules, by=now, only=ids, limit=len(ids))
    for item in still:
        ownership = locked[item.customer_id]
        days = rules[item.territory_id].reclaim_days(item.tier)
        ownerships.assign(
            item.customer_id,
            ownership,
            territory_id=ownership.territory_id,
            owner_id=None,
            source=OwnershipSource.RECLAIM,
            locked=True,
            reason=f"no follow-up for {days} days",
            actor=actor,
        )
    await session.flush()
    return len(still)


class ReclaimRunning(Conflict):
    slug = "reclaim-running"
    title = "A reclaim run is under way"

    def __init__(self, job_id: uuid.UUID | None) -> None:
        super().__init__(
            "the pool's reclaim is running; wait for its job to finish",
            job_id=None if job_id is None else str(job_id),
        )


async def start_reclaim(
    session: AsyncSession, *, now: dt.datetime, principal: Principal | None
) -> Job:
    """Queue a reclaim run as of `now`. One runs at a time, scheduled or asked for: a second
    answers 409 `reclaim-running`."""
    if principal is not None and principal.is_territory_scoped:
        raise OutOfScope("reclaim runs over every territory; use an unconfined key")
    repository = JobRepository(session)

    async def explain() -> None:
        running = await repository.unfinished(JobKind.RECLAIM)
        raise ReclaimRunning(running.id if running else None)

    async with transaction(session, resource="job", explain_integrity_error=explain):
        running = await repository.unfinished(JobKind.RECLAIM)
        if running is not None:
            raise ReclaimRunning(running.id)
        params = jobs.caller_params(principal, "reclaim") | {"now": now.isoformat()}
        job = await jobs.enqueue(
            session,
            Job(
                kind=JobKind.RECLAIM,
                created_by_key_id=None if principal is None else principal.key_id,
                params=params,
            ),
            NewPiece(SWEEP),
        )
    jobs.notify()
    return job


async def reclaim_on_schedule(
    session_factory: async_sessionmaker[AsyncSession], *, interval: float, clock: Clock
) -> None:
    """Queue a reclaim run every `interval` seconds, whichever replica looks first: a run is
    due when none has been queued for `interval`; the one-unfinished-reclaim rule makes a
    second replica's attempt at the same moment a no-op. Any replica's worker runs it."""
    every = dt.timedelta(seconds=interval)
    while True:
        await asyncio.sleep(min(interval, 60.0))
        try:
            async with session_factory() as session:
                last = await session.scalar(
                    select(func.max(Job.created_at)).where(Job.kind == JobKind.RECLAIM)
                )
                if last is not None and last > clock() - every:
                    continue
                await start_reclaim(session, now=clock(), principal=None)
        except (ReclaimRunning, ConcurrentUpdate):
            continue
        except Exception:
            logger.exception("could not queue the scheduled reclaim; the next look tries again")
