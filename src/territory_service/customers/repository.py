from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import joinedload

from territory_service.customers.models import Customer
from territory_service.db import json_array_contains
from territory_service.ownership.models import Ownership
from territory_service.pagination import Page, paginate
from territory_service.repository import TreeRepository, where_equal
from territory_service.territories.repository import in_subtrees


@dataclass(frozen=True)
class CustomerFilter:
    source: str | None = None
    external_id: str | None = None
    province: str | None = None
    city: str | None = None
    industry: str | None = None
    tier: str | None = None
    tag: str | None = None
    parent_id: uuid.UUID | None = None
    territory_id: uuid.UUID | None = None
    include_subterritories: bool = True
    owner_id: uuid.UUID | None = None
    updated_since: datetime | None = None


class CustomerRepository(TreeRepository[Customer]):
    model = Customer
    resource_name = "customer"

    def unscoped_select(self) -> Select[Any]:
        return select(Customer).options(joinedload(Customer.ownership))

    def visibility(self, roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:
        """Customers owned in those territories; a customer without ownership is in none."""
        return exists().where(
            Ownership.customer_id == Customer.id, in_subtrees(Ownership.territory_id, roots)
        )

    async def page(
        self, filters: CustomerFilter, *, limit: int, cursor: str | None
    ) -> Page[Customer]:
        statement = where_equal(
            self.select(),
            filters,
            ("source", "external_id", "province", "city", "industry", "tier", "parent_id"),
        )
        if filters.updated_since is not None:
            statement = statement.where(Customer.updated_at >= filters.updated_since)
        if filters.tag is not None:
            statement = statement.where(
                json_array_contains(Customer.tags, filters.tag, self.dialect)
            )
        owned = self._ownership_condition(filters)
        if owned is not None:
            statement = statement.where(
                exists().where(Ownership.customer_id == Customer.id, *owned)
            )
        return await paginate(self.session, statement, key=Customer.id, limit=limit, cursor=cursor)

    @staticmethod
    def _ownership_condition(filters: CustomerFilter) -> list[Any] | None:
        conditions: list[Any] = []
        if filters.owner_id is not None:
            conditions.append(Ownership.owner_id == filters.owner_id)
        if filters.territory_id is not None:
            if filters.include_subterritories:
                roots = frozenset({filters.territory_id})
                conditions.append(in_subtrees(Ownership.territory_id, roots))
            else:
                conditions.append(Ownership.territory_id == filters.territory_id)
        return conditions or None

    async def reload(self, customer_id: uuid.UUID) -> Customer | None:
        """The customer as stored now, its ownership included, if the caller may see it."""
        statement = (
            self.select()
            .where(Customer.id == customer_id)
            .execution_options(populate_existing=True)
        )
        found: Customer | None = (
            (await self.session.execute(statement)).unique().scalar_one_or_none()
        )
        return found

    async def by_keys(
        self, keys: set[tuple[str, str]], *, for_update: bool
    ) -> dict[tuple[str, str], Customer]:
        """Customers by (source, external_id), grouped by source so each query uses the index."""
        by_source: dict[str, list[str]] = defaultdict(list)
        for source, external_id in keys:
            by_source[source].append(external_id)
        found: dict[tuple[str, str], Customer] = {}
        for source, external_ids in by_source.items():
            # Unconfined: the keys are unique across every territory.
            statement = self.unscoped_select().where(
                Customer.source == source, Customer.external_id.in_(external_ids)
            )
            if for_update:
                statement = statement.with_for_update(of=Customer)
            for customer in (await self.session.execute(statement)).unique().scalars():
                found[(customer.source, customer.external_id)] = customer
        return found

    async def holders_of_registration_ids(self, registration_ids: set[str]) -> dict[str, uuid.UUID]:
        if not registration_ids:
            return {}
        statement = select(Customer.registration_id, Customer.id).where(
            Customer.registration_id.in_(registration_ids)
        )
        return {str(reg): id for reg, id in await self.session.execute(statement)}

    async def existing_ids(self, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        statement = self.scoped(select(Customer.id).where(Customer.id.in_(ids)))
        rows = await self.session.execute(statement)
        return set(rows.scalars())

    async def chunk_after(self, after: uuid.UUID | None, *, limit: int) -> list[Customer]:
        """The next customers in id order, for bulk work in bounded chunks."""
        statement = select(Customer).order_by(Customer.id).limit(limit)
        if after is not None:
            statement = statement.where(Customer.id > after)
        return list((await self.session.execute(statement)).scalars())

    async def by_ids(self, ids: set[uuid.UUID]) -> list[Customer]:
        statement = self.select().where(Customer.id.in_(ids)).order_by(Customer.id)
        return list((await self.session.execute(statement)).scalars())

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count(Customer.id)))).scalar_one())
