"""Claiming from the public pool (公海) and releasing back to it.

A claim runs in one transaction that first locks the claimant's owner row, so one owner's
claims are serial and the holding and daily limits cannot be overrun by concurrent claims;
then it locks the customer's ownership row, so of many owners claiming one customer exactly one
wins. A loser's contention is logged as a `claim_race` conflict (committed), then it answers
409 `customer-taken`. A claim locks the ownership like any manual change.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.conflicts.recorder import record_signals
from territory_service.engine.resolution import ConflictKind, ConflictSignal
from territory_service.errors import Conflict, Forbidden, InvalidReference, NotFound, ServiceError
from territory_service.owners.repository import OwnerLock, OwnerRepository
from territory_service.ownership.assignment import OwnerNotAssignable
from territory_service.ownership.models import Ownership, OwnershipEvent, OwnershipSource
from territory_service.ownership.repository import OwnershipRepository
from territory_service.ownership.service import visible_customer
from territory_service.pool.inherited_rules import EffectiveRules, effective_rules
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.security.principal import Principal
from territory_service.territories.repository import MemberRepository
from territory_service.transaction import transaction

# A claim that loses to one made this recently lost a race (two reps on one pool screen); an
# older claim means the caller's view of the pool was stale, which is no conflict to log.
RACE_WINDOW = dt.timedelta(seconds=30)


class CustomerTaken(Conflict):
    slug = "customer-taken"
    title = "Another owner claimed the customer first"


class NotInPool(Conflict):
    slug = "not-in-pool"
    title = "The customer is not in the pool"


class AlreadyInPool(Conflict):
    slug = "already-in-pool"
    title = "The customer is already in the pool"


class PoolLimitReached(Conflict):
    slug = "pool-limit-reached"
    title = "The owner has reached a pool limit"


class ClaimCooldown(Conflict):
    slug = "claim-cooldown"
    title = "The owner gave this customer up too recently to claim it again"


class NotTheOwner(Conflict):
    slug = "not-the-owner"
    title = "Only the current owner can release the customer"


class ClaimantRequired(ServiceError):
    status = 422
    slug = "claimant-required"
    title = "Say who claims"

    def __init__(self) -> None:
        super().__init__(
            "give owner_id or act for an owner (X-Act-As)",
            errors=[{"pointer": "#/owner_id", "detail": "required without X-Act-As"}],
        )


def acting_for(principal: Principal, owner_id: uuid.UUID | None) -> uuid.UUID | None:
    """The owner a pool call is made for: the acting owner, or the one named in the body
    (they must agree when both are given)."""
    acting = principal.acting_owner
    if acting is not None and owner_id is not None and owner_id != acting.id:
        raise Forbidden("owner_id differs from the owner this call acts for (X-Act-As)")
    return acting.id if acting is not None else owner_id


def day_start(now: dt.datetime, utc_offset_hours: float) -> dt.datetime:
    """The start of `now`'s day in the pool's time zone."""
    zone = dt.timezone(dt.timedelta(hours=utc_offset_hours))
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def claim(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    owner_id: uuid.UUID | None,
    expected: ExpectedVersion | None,
    principal: Principal,
    now: dt.datetime,
    utc_offset_hours: float,
) -> Ownership:
    claimant = acting_for(principal, owner_id)
    if claimant is None:
        raise ClaimantRequired()
    taken: Ownership | None = None
    async with transaction(session, resource="ownership"):
        await visible_customer(session, customer_id, principal)
        found = await OwnerRepository(session).locked([claimant], lock=OwnerLock.CLAIMING)
        owner = found[0] if found else None
        if owner is None:
            raise InvalidReference("owner_id", "owner", claimant)
        if not owner.active:
            raise OwnerNotAssignable(f"owner {claimant} is inactive", owner_id=str(claimant))
        ownerships = OwnershipRepository(session)
        ownership = await ownerships.get(customer_id, for_update=True)
        if ownership is None:
            raise NotFound("ownership of customer", customer_id)
        check_expected(expected, "ownership", ownership.version)
        if ownership.owner_id is not None:
            if ownership.source is not OwnershipSource.CLAIM or ownership.owner_id == claimant:
                raise NotInPool(
                    f"customer {customer_id} is owned by {ownership.owner_id}",
                    owner_id=str(ownership.owner_id),
                )
            taken = ownership
            if ownership.assigned_at >= now - RACE_WINDOW:  # lost to a claim made meanwhile
                await record_signals(session, [_race(ownership, claimant)], ruleset_version=None)
        else:
            await _check_claimable(
                session, ownership, claimant, now=now, utc_offset_hours=utc_offset_hours
            )
            ownerships.assign(
                customer_id,
                ownership,
                territory_id=ownership.territory_id,
                owner_id=claimant,
                source=OwnershipSource.CLAIM,
                locked=True,
                reason="claimed from the pool",
                actor=principal,
            )
            await session.flush()
    if taken is not None:
        raise CustomerTaken(
            f"owner {taken.owner_id} claimed customer {customer_id} first",
            owner_id=str(taken.owner_id),
        )
    return ownership


def _race(ownership: Ownership, loser: uuid.UUID) -> ConflictSignal:
    """One conflict per contended claim (the winner's ownership version names it)."""
    return ConflictSignal(
        ConflictKind.CLAIM_RACE,
        ("claim", str(ownership.customer_id), str(ownership.version)),
        ownership.customer_id,
        territory_id=ownership.territory_id,
        owner_ids=tuple(o for o in (ownership.owner_id, loser) if o is not None),
        details={"winner_owner_id": str(ownership.owner_id)},
    )


async def _check_claimable(
    session: AsyncSession,
    ownership: Ownership,
    claimant: uuid.UUID,
    *,
    now: dt.datetime,
    utc_offset_hours: float,
) -> None:
    territory_id = ownership.territory_id
    if await MemberRepository(session).get_member(territory_id, claimant) is None:
        raise OwnerNotAssignable(
            f"owner {claimant} is not a member of territory {territory_id}",
            owner_id=str(claimant),
            territory_id=str(territory_id),
        )
    rules: EffectiveRules = (await effective_rules(session, {territory_id}))[territory_id]
    if rules.cooldown_days:
        gave_up = await session.scalar(
            select(func.max(OwnershipEvent.created_at)).where(
                OwnershipEvent.customer_id == ownership.customer_id,
                OwnershipEvent.from_owner_id == claimant,
                OwnershipEvent.owner_id.is_(None),
            )
        )
        if gave_up is not None:
            until = gave_up + dt.timedelta(days=rules.cooldown_days)
            if until > now:
                raise ClaimCooldown(
                    f"owner {claimant} gave this customer up on {gave_up.isoformat()}; they may "
                    f"claim it again from {until.isoformat()}",
                    retry_at=until.isoformat(),
                )
    if rules.holding_limit is not None:
        held = await session.scalar(
            select(func.count()).where(
                Ownership.owner_id == claimant,
                Ownership.source == OwnershipSource.CLAIM,
                Ownership.territory_id == territory_id,
            )
        )
        if (held or 0) >= rules.holding_limit:
            raise PoolLimitReached(
                f"owner {claimant} already holds {held} claimed customer(s) here, the limit",
                limit="holding_limit",
                value=rules.holding_limit,
            )
    if rules.daily_claim_limit is not None:
        today = await session.scalar(
            select(func.count()).where(
                OwnershipEvent.owner_id == claimant,
                OwnershipEvent.source == OwnershipSource.CLAIM,
                OwnershipEvent.created_at >= day_start(now, utc_offset_hours),
                OwnershipEvent.territory_id == territory_id,
            )
        )
        if (today or 0) >= rules.daily_claim_limit:
            raise PoolLimitReached(
                f"owner {claimant} made {today} claim(s) here today, the limit",
                limit="daily_claim_limit",
                value=rules.daily_claim_limit,
            )


async def release(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    owner_id: uuid.UUID | None,
    reason: str,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> Ownership:
    """Give the customer back to its territory's pool; it stays there (locked) until claimed."""
    releaser = acting_for(principal, owner_id)
    async with transaction(session, resource="ownership"):
        await visible_customer(session, customer_id, principal)
        ownerships = OwnershipRepository(session)
        ownership = await ownerships.get(customer_id, for_update=True)
        if ownership is None:
            raise NotFound("ownership of customer", customer_id)
        check_expected(expected, "ownership", ownership.version)
        if ownership.owner_id is None:
            raise AlreadyInPool(f"customer {customer_id} is already in the pool")
        if releaser is not None and ownership.owner_id != releaser:
            raise NotTheOwner(
                f"customer {customer_id} is owned by {ownership.owner_id}, not {releaser}",
                owner_id=str(ownership.owner_id),
            )
        ownerships.assign(
            customer_id,
            ownership,
            territory_id=ownership.territory_id,
            owner_id=None,
            source=OwnershipSource.RELEASE,
            locked=True,
            reason=reason,
            actor=principal,
        )
        await session.flush()
    return ownership
