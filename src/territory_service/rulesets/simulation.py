"""Simulating a rule set against the whole pool: who would move, how the load would shift, what
conflicts it would raise. Changes nothing but its own report.

It is the activation's pass over the pool (`PoolRun`, the same decisions in the same order)
with the writes left out: a job whose result holds the summary, and whose moves are stored
per job so they can be paged through (`GET /v1/simulations/{job_id}/moves`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.customers.repository import CustomerRepository
from territory_service.db import utcnow
from territory_service.engine.resolution import ConflictKind
from territory_service.errors import NotFound
from territory_service.heap import collector_paused
from territory_service.jobs import service as jobs
from territory_service.jobs.models import Job, JobKind
from territory_service.jobs.repository import JobRepository
from territory_service.jobs.worker import NewPiece, Piece, step
from territory_service.ownership.pool_run import Decided, Place, PoolRun, decide_all
from territory_service.pagination import Page, paginate
from territory_service.rulesets.compiled import compiled
from territory_service.rulesets.models import SimulationMove
from territory_service.rulesets.repository import RuleSetRepository
from territory_service.security.principal import Principal
from territory_service.transaction import transaction

CHUNK = 5000
# Moves of simulations that finished longer ago are deleted when the next one starts.
KEPT_FOR = dt.timedelta(days=1)


async def start_simulation(
    session: AsyncSession, *, ruleset_id: uuid.UUID, principal: Principal
) -> Job:
    async with transaction(session, resource="rule set"):
        ruleset = await RuleSetRepository(session).get_or_raise(ruleset_id)
        await session.execute(
            delete(SimulationMove).where(
                SimulationMove.job_id.in_(
                    select(Job.id).where(
                        Job.kind == JobKind.SIMULATION, Job.finished_at < utcnow() - KEPT_FOR
                    )
                )
            )
        )
        job = await jobs.enqueue(
            session,
            Job(
                kind=JobKind.SIMULATION,
                subject_id=ruleset.id,
                created_by_key_id=principal.key_id,
                params=jobs.caller_params(principal, "simulation"),
            ),
            NewPiece(SIMULATE),
        )
    jobs.notify()
    return job


SIMULATE = "simulate"


@step(JobKind.SIMULATION, SIMULATE)
async def simulate_piece(piece: Piece) -> None:
    """The whole simulation is one piece: done again from the start if it was interrupted
    (it changes nothing but its own moves, which it drops first)."""
    assert piece.subject_id is not None
    result, customers = await simulate(
        piece.session_factory, ruleset_id=piece.subject_id, job_id=piece.job_id
    )
    async with piece.session_factory() as session, transaction(session, resource="simulation"):
        await piece.complete(session, total=customers, result=result)


class Tally:
    """The summary a simulation reports, built chunk by chunk."""

    def __init__(self) -> None:
        self.customers = self.moves = self.territory_changes = self.to_pool = 0
        self.owners: dict[str, Counter[uuid.UUID]] = {"before": Counter(), "after": Counter()}
        self.territories: dict[str, Counter[uuid.UUID]] = {"before": Counter(), "after": Counter()}
        self.conflicts: dict[ConflictKind, set[str]] = {}
        self.conflicted: dict[ConflictKind, set[uuid.UUID]] = {}

    def add(self, decided: Decided) -> list[dict[str, Any]]:
        """Count a chunk; return its moves as rows to store."""
        self.customers += decided.customers
        for place, count in decided.stayed.items():
            self._count(place, count, "before", "after")
        moves: list[dict[str, Any]] = []
        for change in decided.changes:
            before, after = change.before, change.after
            self._count(before, 1, "before")
            self._count(after, 1, "after")
            self.moves += 1
            self.territory_changes += before is None or before[0] != after[0]
            self.to_pool += after[1] is None and before is not None and before[1] is not None
            moves.append(
                {
                    "customer_id": change.customer_id,
                    "from_territory_id": before[0] if before else None,
                    "from_owner_id": before[1] if before else None,
                    "territory_id": after[0],
                    "owner_id": after[1],
                    "rule_id": change.decision.rule_id,
                }
            )
        for signal in decided.signals:
            self.conflicts.setdefault(signal.kind, set()).add(":".join(signal.cause))
            self.conflicted.setdefault(signal.kind, set()).add(signal.customer_id)
        return moves

    def _count(self, place: Place | None, count: int, *sides: str) -> None:
        if place is None:
            return
        for side in sides:
            self.territories[side][place[0]] += count
            if place[1] is not None:
                self.owners[side][place[1]] += count

    def summary(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "moves": self.moves,
            "territory_changes": self.territory_changes,
            "to_pool": self.to_pool,
            "load": {
                "owners": _load(self.owners, "owner_id"),
                "territories": _load(self.territories, "territory_id"),
            },
            "conflicts": [
                {
                    "kind": kind.value,
                    "conflicts": len(causes),
                    "customers": len(self.conflicted[kind]),
                }
                for kind, causes in sorted(self.conflicts.items())
            ],
        }


def _load(counts: dict[str, Counter[uuid.UUID]], key: str) -> list[dict[str, Any]]:
    ids = sorted(set(counts["before"]) | set(counts["after"]))
    return [
        {
            key: str(id_),
            "before": counts["before"][id_],
            "after": counts["after"][id_],
            "change": counts["after"][id_] - counts["before"][id_],
        }
        for id_ in ids
    ]


async def simulate(
    session_factory: async_sessionmaker[AsyncSession], *, ruleset_id: uuid.UUID, job_id: uuid.UUID
) -> tuple[dict[str, Any], int]:
    """The simulation's summary, and how many customers it looked at."""
    async with session_factory() as session, transaction(session, resource="rule set"):
        await session.execute(delete(SimulationMove).where(SimulationMove.job_id == job_id))
        ruleset = await RuleSetRepository(session).get_or_raise(ruleset_id)
        run = await PoolRun.prepare(session, await compiled(session, ruleset))
        version = ruleset.version
        total = await CustomerRepository(session).count()
    await jobs.progress(session_factory, job_id, total=total)
    tally = Tally()
    with collector_paused():
        async for decided in decide_all(session_factory, run, chunk=CHUNK):
            moves = tally.add(decided)
            async with session_factory() as session, transaction(session, resource="simulation"):
                if moves:
                    await session.execute(
                        insert(SimulationMove), [move | {"job_id": job_id} for move in moves]
                    )
            await jobs.progress(session_factory, job_id, done=tally.customers)
    summary = tally.summary() | {"ruleset_id": str(ruleset_id), "ruleset_version": version}
    return summary, tally.customers


async def list_moves(
    session: AsyncSession,
    *,
    job_id: uuid.UUID,
    territory_id: uuid.UUID | None,
    owner_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> Page[SimulationMove]:
    async with transaction(session, resource="simulation"):
        job = await JobRepository(session).get(job_id)
        if job is None or job.kind is not JobKind.SIMULATION:
            raise NotFound("simulation", job_id)
        statement = select(SimulationMove).where(SimulationMove.job_id == job_id)
        if territory_id is not None:
            statement = statement.where(
                (SimulationMove.territory_id == territory_id)
                | (SimulationMove.from_territory_id == territory_id)
            )
        if owner_id is not None:
            statement = statement.where(
                (SimulationMove.owner_id == owner_id) | (SimulationMove.from_owner_id == owner_id)
            )
        return await paginate(
            session, statement, key=SimulationMove.customer_id, limit=limit, cursor=cursor
        )
