"""Group companies move together (DESIGN §3.2): when a person moves a group's root, its
subsidiaries follow; a subsidiary moved on its own, or locked elsewhere, splits the group."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.customers.models import Customer
from territory_service.engine.resolution import ConflictSignal, Situation, group_split
from territory_service.ownership.models import Ownership, OwnershipSource
from territory_service.ownership.repository import OwnershipRepository
from territory_service.ownership.resolver import group_root_ownership
from territory_service.security.principal import Principal


async def subsidiaries(session: AsyncSession, root_id: uuid.UUID) -> list[uuid.UUID]:
    """Every customer below the root in its group, level by level."""
    found: list[uuid.UUID] = []
    seen, level = {root_id}, [root_id]
    while level:
        below = await session.scalars(select(Customer.id).where(Customer.parent_id.in_(level)))
        level = [customer_id for customer_id in below if customer_id not in seen]
        seen.update(level)
        found.extend(level)
    return found


async def follow_group(
    session: AsyncSession,
    customer: Customer,
    ownership: Ownership,
    *,
    actor: Principal | None,
    reason: str,
    moved_alone: Collection[uuid.UUID] = (),
) -> list[ConflictSignal]:
    """After a person moved `customer` to `ownership`, in the caller's transaction: a group
    root carries its unlocked subsidiaries along (source `group`), a subsidiary that now
    differs from its root splits the group. Customers in `moved_alone` are being moved by
    the same request and are left to it. Returns the `group_split` signals to record."""
    if customer.parent_id is not None:
        root_id, root = await group_root_ownership(session, customer)
        if root is None or root.owner_id == ownership.owner_id:
            return []
        return [_split(customer.id, ownership, root_id, root)]
    signals: list[ConflictSignal] = []
    ownerships = OwnershipRepository(session)
    ids = set(await subsidiaries(session, customer.id)) - set(moved_alone)
    current = await ownerships.of_customers(ids, for_update=True)
    place = (ownership.territory_id, ownership.owner_id)
    for customer_id in sorted(current):
        child = current[customer_id]
        if child.locked:
            if child.owner_id != ownership.owner_id:
                signals.append(_split(customer_id, child, customer.id, ownership))
        elif (child.territory_id, child.owner_id) != place:
            ownerships.assign(
                customer_id,
                child,
                territory_id=ownership.territory_id,
                owner_id=ownership.owner_id,
                source=OwnershipSource.GROUP,
                reason=reason,
                actor=actor,
            )
    return signals


def _split(
    customer_id: uuid.UUID, ownership: Ownership, root_id: uuid.UUID | None, root: Ownership
) -> ConflictSignal:
    return group_split(
        Situation(
            customer_id=customer_id,
            territory_id=ownership.territory_id,
            owner_id=ownership.owner_id,
            locked=True,
            group_root_id=root_id,
            group_territory_id=root.territory_id,
            group_owner_id=root.owner_id,
        )
    )
