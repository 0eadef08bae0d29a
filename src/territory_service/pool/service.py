"""Pool rules per territory, the pool's customers, and follow-up reports."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.customers.models import Customer
from territory_service.customers.repository import CustomerRepository
from territory_service.db import json_array_contains
from territory_service.errors import ServiceError
from territory_service.ownership.models import Ownership
from territory_service.pagination import Page, paginate
from territory_service.pool.inherited_rules import FIELDS, EffectiveRules, effective_rules
from territory_service.pool.models import PoolRules
from territory_service.pool.schemas import PoolRulesPut
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.repository import where_equal
from territory_service.security.principal import Principal
from territory_service.territories.repository import TerritoryRepository, in_subtrees
from territory_service.transaction import transaction


class ActivityInFuture(ServiceError):
    status = 422
    slug = "activity-in-future"
    title = "A follow-up cannot lie in the future"


@dataclass(frozen=True)
class PoolFilter:
    tier: str | None = None
    province: str | None = None
    industry: str | None = None
    tag: str | None = None
    include_subterritories: bool = False


async def get_pool_rules(
    session: AsyncSession, *, territory_id: uuid.UUID, principal: Principal
) -> tuple[PoolRules | None, EffectiveRules]:
    async with transaction(session, resource="pool rules"):
        await TerritoryRepository(session, roots=principal.territory_ids).get_or_raise(territory_id)
        own = await session.get(PoolRules, territory_id)
        return own, (await effective_rules(session, {territory_id}))[territory_id]


async def put_pool_rules(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID,
    data: PoolRulesPut,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> tuple[PoolRules, EffectiveRules]:
    """Set the territory's own rules, all fields at once (left out: inherited)."""
    async with transaction(session, resource="pool rules"):
        territories = TerritoryRepository(session, roots=principal.territory_ids)
        await territories.get_or_raise(territory_id, for_update=True)
        own = await session.get(PoolRules, territory_id, with_for_update=True)
        check_expected(expected, "pool rules", 0 if own is None else own.version)
        if own is None:
            own = PoolRules(territory_id=territory_id)
            session.add(own)
        for name in FIELDS:
            setattr(own, name, getattr(data, name))
        await session.flush()
        return own, (await effective_rules(session, {territory_id}))[territory_id]


async def list_pool(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID,
    filters: PoolFilter,
    limit: int,
    cursor: str | None,
    principal: Principal,
) -> Page[Customer]:
    """Customers waiting unowned in the territory's pool (and its children's, if asked)."""
    async with transaction(session, resource="pool"):
        await TerritoryRepository(session, roots=principal.territory_ids).get_or_raise(territory_id)
        customers = CustomerRepository(session, roots=principal.territory_ids)
        place = (
            in_subtrees(Ownership.territory_id, frozenset({territory_id}))
            if filters.include_subterritories
            else Ownership.territory_id == territory_id
        )
        in_pool = (
            select(Ownership.customer_id)
            .where(place, Ownership.owner_id.is_(None))
            .scalar_subquery()
        )
        statement = where_equal(
            customers.select().where(Customer.id.in_(in_pool)),
            filters,
            ("tier", "province", "industry"),
        )
        if filters.tag is not None:
            statement = statement.where(
                json_array_contains(Customer.tags, filters.tag, customers.dialect)
            )
        return await paginate(session, statement, key=Customer.id, limit=limit, cursor=cursor)


async def report_activity(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    at: dt.datetime | None,
    now: dt.datetime,
    principal: Principal,
) -> Customer:
    """A follow-up happened: the reclaim clock restarts from it (an older report changes
    nothing)."""
    at = at or now
    if at > now + dt.timedelta(minutes=5):
        raise ActivityInFuture(
            f"at {at.isoformat()} lies in the future",
            errors=[{"pointer": "#/at", "detail": "in the future"}],
        )
    async with transaction(session, resource="customer"):
        customers = CustomerRepository(session, roots=principal.territory_ids)
        customer = await customers.get_or_raise(customer_id, for_update=True)
        if customer.last_activity_at is None or customer.last_activity_at < at:
            await customers.update(customer, {"last_activity_at": at})
        return customer
