"""Hand-over: everything a leaving owner holds goes to one named owner, or is redistributed by
each territory's strategy, as a job.

The job works in chunks, each one transaction and one piece of the job (`jobs/worker.py`), so
any replica carries it on: it locks the next customers the owner still
holds (group roots first, so a subsidiary follows its root instead of being dealt out on its
own), chooses each one's new owner as resolution would with the leaving owner treated as
inactive, and writes the ownership with its event. Territories and locks stay as they are.
What the owner gains meanwhile is picked up by a later chunk, so the job ends only when they
hold nothing; then they can be deactivated.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.conflicts.recorder import record_signals
from territory_service.customers.models import Customer
from territory_service.engine.directory import Directory, OwnerInfo
from territory_service.engine.resolution import ConflictSignal, Situation, Step, owner_in_territory
from territory_service.errors import OutOfScope, ServiceError
from territory_service.jobs import service as jobs
from territory_service.jobs.models import Job, JobKind
from territory_service.jobs.worker import NewPiece, Piece, step
from territory_service.owners.repository import OwnerRepository
from territory_service.owners.schemas import Handover
from territory_service.ownership.assignment import check_target
from territory_service.ownership.groups import follow_group
from territory_service.ownership.models import Ownership, OwnershipSource
from territory_service.ownership.repository import OwnershipRepository
from territory_service.ownership.resolver import directory_for
from territory_service.security.principal import Principal
from territory_service.transaction import transaction

CHUNK = 500


class HandoverToSelf(ServiceError):
    status = 422
    slug = "handover-to-self"
    title = "An owner cannot hand over to themselves"


@dataclass
class Tally:
    """Where the customers the owner held went."""

    moved: int = 0  # to another owner
    to_pool: int = 0  # no member had room

    def as_result(self) -> dict[str, Any]:
        return {"moved": self.moved, "to_pool": self.to_pool}


async def start_handover(
    session: AsyncSession,
    *,
    owner_id: uuid.UUID,
    data: Handover,
    principal: Principal,
) -> Job:
    async with transaction(session, resource="owner"):
        owners = OwnerRepository(session, roots=principal.territory_ids)
        owner = await owners.get_or_raise(owner_id)
        if principal.is_territory_scoped:
            raise OutOfScope(
                "a hand-over moves customers in every territory; use an unconfined key"
            )
        if data.to_owner_id == owner.id:
            raise HandoverToSelf(
                "to_owner_id names the leaving owner",
                errors=[{"pointer": "#/to_owner_id", "detail": "the leaving owner"}],
            )
        await check_target(
            session,
            territory_id=None,
            owner_id=data.to_owner_id,
            principal=principal,
            owner_field="to_owner_id",
        )
        held = await owners.count_owned_customers(owner.id)
        params = jobs.caller_params(principal, data.reason)
        params["to_owner_id"] = None if data.to_owner_id is None else str(data.to_owner_id)
        job = await jobs.enqueue(
            session,
            Job(
                kind=JobKind.HANDOVER,
                subject_id=owner.id,
                total=held,
                created_by_key_id=principal.key_id,
                params=params,
            ),
            NewPiece(MOVE),
        )
    jobs.notify()
    return job


MOVE = "move"


@step(JobKind.HANDOVER, MOVE)
async def hand_over(piece: Piece) -> None:
    """One chunk of the hand-over with the mark that it is done, and the next chunk queued
    while the owner still holds customers."""
    assert piece.subject_id is not None
    to_owner_id = piece.params["to_owner_id"]
    tally = Tally()
    async with piece.session_factory() as session, transaction(session, resource="ownership"):
        count = await _hand_over_chunk(
            session,
            piece.subject_id,
            None if to_owner_id is None else uuid.UUID(to_owner_id),
            reason=piece.params["reason"],
            actor=jobs.actor_of(piece.params),
            tally=tally,
        )
        more = [NewPiece(MOVE)] if count else []
        await piece.complete(session, done=count, result=tally.as_result(), more=more)


async def _hand_over_chunk(
    session: AsyncSession,
    owner_id: uuid.UUID,
    to_owner_id: uuid.UUID | None,
    *,
    reason: str,
    actor: Principal | None,
    tally: Tally,
) -> int:
    """Hand over the next customers the owner holds, group roots first so that their
    subsidiaries follow them; how many (0: nothing left)."""
    rows = (
        await session.execute(
            select(Ownership, Customer)
            .join(Customer, Customer.id == Ownership.customer_id)
            .where(Ownership.owner_id == owner_id)
            .order_by(Ownership.customer_id)  # the order every writer locks ownership rows in
            .limit(CHUNK)
            .with_for_update(of=Ownership)
        )
    ).all()
    if not rows:
        return 0
    rows = sorted(rows, key=lambda row: (row[1].parent_id is not None, row[0].customer_id))
    directory, load = await directory_for(
        session, {o.territory_id for o, _ in rows}, lock_owners=True
    )
    directory = _without(directory, owner_id)
    ownerships = OwnershipRepository(session)
    signals: list[ConflictSignal] = []
    for ownership, customer in rows:
        if ownership.owner_id != owner_id:
            continue  # its group root, handed over earlier in this chunk, took it along
        territory_id = ownership.territory_id
        named = (
            to_owner_id
            if to_owner_id is not None and directory.member(territory_id, to_owner_id)
            else None
        )
        steps: list[Step] = []
        chosen = owner_in_territory(
            territory_id,
            named,
            Situation(customer_id=ownership.customer_id, territory_id=territory_id),
            directory,
            load,
            steps,
            signals,
        )
        ownerships.assign(
            ownership.customer_id,
            ownership,
            territory_id=territory_id,
            owner_id=chosen,
            source=OwnershipSource.TRANSFER,
            locked=ownership.locked,
            reason=reason,
            actor=actor,
        )
        load.move((territory_id, owner_id), (territory_id, chosen))
        signals += await follow_group(session, customer, ownership, actor=actor, reason=reason)
    tally.moved += sum(o.owner_id is not None for o, _ in rows)
    tally.to_pool += sum(o.owner_id is None for o, _ in rows)
    await session.flush()
    await record_signals(session, signals, ruleset_version=None)
    return len(rows)


def _without(directory: Directory, owner_id: uuid.UUID) -> Directory:
    """The directory with the leaving owner inactive: no strategy picks them."""
    leaving = directory.owners.get(owner_id)
    capacity = leaving.capacity if leaving else None
    owners = {**directory.owners, owner_id: OwnerInfo(owner_id, active=False, capacity=capacity)}
    return Directory(directory.territories, owners)
