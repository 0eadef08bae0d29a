"""Ownership rows and their events. Every change of a row writes its one event, here."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.db import utcnow
from territory_service.logs import request_id_var
from territory_service.ownership.models import Ownership, OwnershipEvent, OwnershipSource
from territory_service.pagination import Page, paginate
from territory_service.security.principal import Principal

Place = tuple[uuid.UUID | None, uuid.UUID | None]  # (territory, owner); owner None: the pool


# Moves that pass a customer from owner to owner without anyone deciding to work it anew keep
# the pool's reclaim clock running (a hand-over must not buy a rep more time).
KEEPS_CLOCK = frozenset({OwnershipSource.TRANSFER, OwnershipSource.GROUP, OwnershipSource.MERGE})


def held_since(
    current: Ownership | None,
    owner_id: uuid.UUID | None,
    source: OwnershipSource,
    now: dt.datetime,
) -> dt.datetime | None:
    """When the new owner's hold began: None in the pool, kept for the same owner and for
    moves that keep the clock, else now."""
    if owner_id is None:
        return None
    previous = None if current is None else current.owner_id
    if current is not None and previous is not None:
        return current.held_since if previous == owner_id or source in KEEPS_CLOCK else now
    return now


class OwnershipRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, customer_id: uuid.UUID, *, for_update: bool = False) -> Ownership | None:
        statement = select(Ownership).where(Ownership.customer_id == customer_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def of_customers(
        self, customer_ids: set[uuid.UUID], *, for_update: bool = False
    ) -> dict[uuid.UUID, Ownership]:
        if not customer_ids:
            return {}
        statement = select(Ownership).where(Ownership.customer_id.in_(customer_ids))
        if for_update:  # in id order, so that two writers never wait on each other in a cycle
            statement = statement.order_by(Ownership.customer_id).with_for_update()
        return {o.customer_id: o for o in (await self.session.execute(statement)).scalars()}

    def assign(
        self,
        customer_id: uuid.UUID,
        current: Ownership | None,
        *,
        territory_id: uuid.UUID,
        owner_id: uuid.UUID | None,
        source: OwnershipSource,
        rule_id: uuid.UUID | None = None,
        ruleset_version: int | None = None,
        locked: bool = False,
        reason: str | None = None,
        actor: Principal | None = None,
    ) -> Ownership:
        """Stage a customer's new ownership and its event in the caller's transaction.

        The flush makes the update a compare-and-set on the row's version (the mapper's version
        counter), so a concurrent writer that read the same version loses instead of
        overwriting; the event carries the version that flush writes."""
        before: Place = (
            (None, None) if current is None else (current.territory_id, current.owner_id)
        )
        version = 1 if current is None else current.version + 1
        now = utcnow()
        values = {
            "territory_id": territory_id,
            "owner_id": owner_id,
            "source": source,
            "rule_id": rule_id,
            "ruleset_version": ruleset_version,
            "locked": locked,
            "assigned_at": now,
            "held_since": held_since(current, owner_id, source, now),
        }
        if current is None:
            current = Ownership(customer_id=customer_id, **values)
            self.session.add(current)
        else:
            for name, value in values.items():
                setattr(current, name, value)
        self._event(current, before, reason=reason, actor=actor, version=version)
        return current

    def record_removal(
        self,
        ownership: Ownership,
        *,
        reason: str,
        actor: Principal,
        source: OwnershipSource = OwnershipSource.MANUAL,
    ) -> OwnershipEvent:
        """The event that closes a customer's history when it leaves the pool (deleted, or
        merged into another customer: source `merge`)."""
        event = self._event(
            ownership,
            (ownership.territory_id, ownership.owner_id),
            reason=reason,
            actor=actor,
            version=ownership.version + 1,
            after=(None, None),
        )
        event.source = source
        event.locked = False
        return event

    def _event(
        self,
        ownership: Ownership,
        before: Place,
        *,
        reason: str | None,
        actor: Principal | None,
        version: int | None = None,
        after: Place | None = None,
    ) -> OwnershipEvent:
        territory_id, owner_id = after or (ownership.territory_id, ownership.owner_id)
        event = OwnershipEvent(
            customer_id=ownership.customer_id,
            version=version if version is not None else ownership.version,
            from_territory_id=before[0],
            from_owner_id=before[1],
            territory_id=territory_id,
            owner_id=owner_id,
            source=ownership.source,
            rule_id=ownership.rule_id,
            ruleset_version=ownership.ruleset_version,
            locked=ownership.locked,
            reason=reason,
            actor_key_id=actor.key_id if actor else None,
            acting_owner_id=actor.acting_owner.id if actor and actor.acting_owner else None,
            request_id=request_id_var.get(),
        )
        self.session.add(event)
        return event

    async def history(
        self, customer_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> Page[OwnershipEvent]:
        statement = select(OwnershipEvent).where(OwnershipEvent.customer_id == customer_id)
        return await paginate(
            self.session, statement, key=OwnershipEvent.id, limit=limit, cursor=cursor
        )

    async def load(
        self, *, territory_ids: Iterable[uuid.UUID], owner_ids: Iterable[uuid.UUID]
    ) -> tuple[dict[tuple[uuid.UUID, uuid.UUID], int], dict[uuid.UUID, int]]:
        """Customers held per (territory, owner) in these territories, and per owner in all."""
        territory_ids, owner_ids = set(territory_ids), set(owner_ids)
        in_territory: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
        total: dict[uuid.UUID, int] = {}
        if territory_ids:
            pairs = await self.session.execute(
                select(Ownership.territory_id, Ownership.owner_id, func.count())
                .where(Ownership.territory_id.in_(territory_ids), Ownership.owner_id.is_not(None))
                .group_by(Ownership.territory_id, Ownership.owner_id)
            )
            in_territory = {(t, o): n for t, o, n in pairs if o is not None}
        if owner_ids:
            owners = await self.session.execute(
                select(Ownership.owner_id, func.count())
                .where(Ownership.owner_id.in_(owner_ids))
                .group_by(Ownership.owner_id)
            )
            total = {o: n for o, n in owners if o is not None}
        return in_territory, total
