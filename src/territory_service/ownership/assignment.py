"""Ownership set by a person: manual assignment locks it, unlocking hands it back to the rules.

Both are one transaction each: the customer's ownership row is read under a row lock, checked
against the version the caller based the change on (`If-Match`), and rewritten with its one
event (a compare-and-set on the version in the flush).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.conflicts.recorder import record_signals
from territory_service.customers.models import Customer
from territory_service.engine.resolution import Source
from territory_service.errors import Conflict, InvalidReference, NotFound, OutOfScope
from territory_service.owners.models import Owner
from territory_service.owners.repository import OwnerRepository
from territory_service.ownership.groups import follow_group
from territory_service.ownership.models import Ownership, OwnershipSource
from territory_service.ownership.repository import OwnershipRepository
from territory_service.ownership.resolver import decide
from territory_service.ownership.service import visible_customer
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.rulesets.compiled import compiled
from territory_service.rulesets.repository import RuleSetRepository
from territory_service.security.principal import Principal
from territory_service.territories.repository import MemberRepository, TerritoryRepository
from territory_service.transaction import transaction


class OwnerNotAssignable(Conflict):
    status = 422
    slug = "owner-not-assignable"
    title = "The owner cannot take this customer"


async def _locked_ownership(
    session: AsyncSession,
    customer_id: uuid.UUID,
    principal: Principal,
    expected: ExpectedVersion | None,
) -> tuple[Customer, Ownership]:
    """The customer (when the key reaches it) and its ownership, locked and at the expected
    version."""
    customer = await visible_customer(session, customer_id, principal)
    ownership = await OwnershipRepository(session).get(customer_id, for_update=True)
    if ownership is None:
        raise NotFound("ownership of customer", customer_id)
    check_expected(expected, "ownership", ownership.version)
    return customer, ownership


async def share_locked_owner(session: AsyncSession, owner_id: uuid.UUID) -> Owner | None:
    """The owner, locked as a writer giving them customers locks them (`OwnerLock.GIVING`)."""
    found = await OwnerRepository(session).locked([owner_id])
    return found[0] if found else None


async def check_target(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID | None,
    owner_id: uuid.UUID | None,
    principal: Principal,
    owner_field: str = "owner_id",
    territory_field: str = "territory_id",
) -> None:
    """The territory exists within the key's reach, and the owner is active and a member of
    it; with no territory, only the owner is checked."""
    if territory_id is not None:
        if await TerritoryRepository(session).get(territory_id) is None:
            raise InvalidReference(territory_field, "territory", territory_id)
        if principal.territory_ids is not None:
            scoped = TerritoryRepository(session, roots=principal.territory_ids)
            if await scoped.get(territory_id) is None:
                raise OutOfScope("the territory lies outside this key's territories")
    if owner_id is None:
        return
    owner = await share_locked_owner(session, owner_id)
    if owner is None:
        raise InvalidReference(owner_field, "owner", owner_id)
    if not owner.active:
        raise OwnerNotAssignable(f"owner {owner_id} is inactive", owner_id=str(owner_id))
    if territory_id is None:
        return
    if await MemberRepository(session).get_member(territory_id, owner_id) is None:
        raise OwnerNotAssignable(
            f"owner {owner_id} is not a member of territory {territory_id}; add them first",
            owner_id=str(owner_id),
            territory_id=str(territory_id),
        )


async def assign_manually(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    territory_id: uuid.UUID | None,
    owner_id: uuid.UUID | None,
    reason: str,
    expected: ExpectedVersion,
    principal: Principal,
) -> Ownership:
    """Put the customer with an owner (or, owner None, in a territory's pool) and lock it there.
    The territory defaults to the current one."""
    async with transaction(session, resource="ownership"):
        return await assign_locked(
            session,
            customer_id=customer_id,
            territory_id=territory_id,
            owner_id=owner_id,
            reason=reason,
            expected=expected,
            principal=principal,
        )


async def assign_locked(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    territory_id: uuid.UUID | None,
    owner_id: uuid.UUID | None,
    reason: str,
    expected: ExpectedVersion | None,
    principal: Principal,
    fields: str = "",
) -> Ownership:
    """Manual assignment in the caller's transaction (also a conflict resolution's action):
    the ownership row locked and checked against the expected version, the target checked, the
    ownership locked there, and a group root's subsidiaries carried along. `fields` prefixes
    the JSON pointers of errors (`action/`)."""
    if owner_id is not None:
        # Owner row before ownership row, the order claims and transfers lock them in.
        await share_locked_owner(session, owner_id)
    customer, current = await _locked_ownership(session, customer_id, principal, expected)
    territory_id = territory_id or current.territory_id
    await check_target(
        session,
        territory_id=territory_id,
        owner_id=owner_id,
        principal=principal,
        owner_field=f"{fields}owner_id",
        territory_field=f"{fields}territory_id",
    )
    ownership = OwnershipRepository(session).assign(
        customer_id,
        current,
        territory_id=territory_id,
        owner_id=owner_id,
        source=OwnershipSource.MANUAL,
        locked=True,
        reason=reason,
        actor=principal,
    )
    splits = await follow_group(session, customer, ownership, actor=principal, reason=reason)
    await session.flush()
    await record_signals(session, splits, ruleset_version=None)
    return ownership


async def unlock(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    reason: str | None,
    expected: ExpectedVersion,
    principal: Principal,
) -> Ownership:
    """Hand the customer back to the rules: unlocked and resolved at once with the active rule
    set (it stays where it is when none is active, or when the rules agree)."""
    async with transaction(session, resource="ownership"):
        customer, current = await _locked_ownership(session, customer_id, principal, expected)
        if not current.locked:
            raise Conflict("the ownership is not locked", customer_id=str(customer_id))
        active = await RuleSetRepository(session).active()
        ownerships = OwnershipRepository(session)
        reason = reason or "unlocked"
        decision = None
        if active is not None:
            current.locked = False  # decide as the rules would for an unlocked customer
            decision = await decide(session, await compiled(session, active), customer, current)
            await record_signals(session, decision.conflicts, ruleset_version=active.number)
        if decision is not None and decision.source is not Source.KEPT:
            ownership = ownerships.assign_decided(
                customer_id, current, decision, reason=reason, actor=principal
            )
        else:
            ownership = ownerships.assign(
                customer_id,
                current,
                territory_id=current.territory_id,
                owner_id=current.owner_id,
                source=current.source,
                reason=reason,
                actor=principal,
            )
        await session.flush()
        if principal.territory_ids is not None:
            await check_target(
                session, territory_id=ownership.territory_id, owner_id=None, principal=principal
            )
        return ownership
