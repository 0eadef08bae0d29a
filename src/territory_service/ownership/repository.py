"""Ownership rows and their events. Every change of a row writes its one event, here, with the
values `ownership/changes.py` gives them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.db import utcnow
from territory_service.engine.resolution import Decision
from territory_service.ownership.changes import Attribution, Held, OwnershipChange
from territory_service.ownership.models import Ownership, OwnershipEvent, OwnershipSource
from territory_service.pagination import Page, paginate
from territory_service.security.principal import Principal

# The key and the version counter of a row are the mapper's, not a change's to set.
_KEPT_BY_MAPPER = frozenset({"customer_id", "version"})


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
        """Stage a customer's new ownership and its event in the caller's transaction."""
        change = OwnershipChange(
            customer_id,
            Held.of(current),
            territory_id,
            owner_id,
            source,
            rule_id,
            ruleset_version,
            locked,
            at=utcnow(),
        )
        return self.write(change, current, reason=reason, actor=actor)

    def assign_decided(
        self,
        customer_id: uuid.UUID,
        current: Ownership | None,
        decision: Decision,
        *,
        reason: str | None,
        actor: Principal | None,
    ) -> Ownership:
        """Stage the change an engine decision makes, as `assign` does."""
        change = OwnershipChange.decided(customer_id, Held.of(current), decision, at=utcnow())
        return self.write(change, current, reason=reason, actor=actor)

    def write(
        self,
        change: OwnershipChange,
        current: Ownership | None,
        *,
        reason: str | None,
        actor: Principal | None,
    ) -> Ownership:
        """Stage a change of `current` (the row it was built from) and its event.

        The flush makes the update a compare-and-set on the row's version (the mapper's version
        counter, which moves it to `change.version`), so a concurrent writer that read the same
        version loses instead of overwriting."""
        row = change.row()
        if current is None:
            current = Ownership(**row)
            self.session.add(current)
        else:
            for name, value in row.items():
                if name not in _KEPT_BY_MAPPER:
                    setattr(current, name, value)
        self.session.add(OwnershipEvent(**change.event(Attribution.of(reason=reason, actor=actor))))
        return current

    def record_removal(
        self,
        ownership: Ownership,
        *,
        reason: str,
        actor: Principal,
        source: OwnershipSource = OwnershipSource.MANUAL,
    ) -> None:
        """The event that closes a customer's history when it leaves the pool (deleted, or
        merged into another customer: source `merge`)."""
        leaving = OwnershipChange(
            ownership.customer_id,
            Held.of(ownership),
            None,
            None,
            source,
            ownership.rule_id,
            ownership.ruleset_version,
            locked=False,
            at=utcnow(),
        )
        self.session.add(
            OwnershipEvent(**leaving.event(Attribution.of(reason=reason, actor=actor)))
        )

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
