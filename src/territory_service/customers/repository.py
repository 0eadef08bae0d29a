from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, func, literal, or_, select, union_all
from sqlalchemy.orm import joinedload

from territory_service.customers.models import Customer, CustomerAlias
from territory_service.db import json_array_contains
from territory_service.ownership.models import Ownership
from territory_service.pagination import Page, paginate
from territory_service.repository import TreeRepository, where_equal
from territory_service.territories.repository import in_subtrees


@dataclass(frozen=True)
class IdentityRow:
    """What duplicate detection reads of a customer: its folded identity and its owner."""

    id: uuid.UUID
    normalized_name: str
    registration_key: str | None
    territory_id: uuid.UUID | None
    owner_id: uuid.UUID | None


def _by_source(keys: set[tuple[str, str]]) -> dict[str, list[str]]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, external_id in sorted(keys):
        by_source[source].append(external_id)
    return by_source


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
            self.select(), filters, ("province", "city", "industry", "tier", "parent_id")
        )
        if filters.external_id is not None:
            statement = statement.where(self._has_external_id(filters.source, filters.external_id))
        elif filters.source is not None:
            statement = statement.where(Customer.source == filters.source)
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
    def _has_external_id(source: str | None, external_id: str) -> ColumnElement[bool]:
        """The customer carries the external id, or took it over by merging its holder."""
        own = Customer.external_id == external_id
        aliased = select(CustomerAlias.customer_id).where(CustomerAlias.external_id == external_id)
        if source is not None:
            own = own & (Customer.source == source)
            aliased = aliased.where(CustomerAlias.source == source)
        return or_(own, Customer.id.in_(aliased))

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
        """Customers by (source, external_id), grouped by source so each query uses the index.
        A key of a customer merged into another finds the survivor."""
        found: dict[tuple[str, str], Customer] = {}
        for source, external_ids in _by_source(keys).items():
            # Unconfined: the keys are unique across every territory.
            statement = self.unscoped_select().where(
                Customer.source == source, Customer.external_id.in_(external_ids)
            )
            if for_update:
                statement = statement.with_for_update(of=Customer)
            for customer in (await self.session.execute(statement)).unique().scalars():
                found[(customer.source, customer.external_id)] = customer
        aliases = await self.aliases(keys - found.keys())
        if aliases:
            survivors = {c.id: c for c in await self._by_ids(set(aliases.values()), for_update)}
            for key, customer_id in aliases.items():
                if customer_id in survivors:
                    found[key] = survivors[customer_id]
        return found

    async def aliases(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], uuid.UUID]:
        """The survivors that took over these (source, external_id) keys in a merge."""
        found: dict[tuple[str, str], uuid.UUID] = {}
        for source, external_ids in _by_source(keys).items():
            statement = select(
                CustomerAlias.source, CustomerAlias.external_id, CustomerAlias.customer_id
            ).where(CustomerAlias.source == source, CustomerAlias.external_id.in_(external_ids))
            for alias_source, external_id, customer_id in await self.session.execute(statement):
                found[(alias_source, external_id)] = customer_id
        return found

    async def _by_ids(self, ids: set[uuid.UUID], for_update: bool) -> list[Customer]:
        statement = self.unscoped_select().where(Customer.id.in_(ids)).order_by(Customer.id)
        if for_update:
            statement = statement.with_for_update(of=Customer)
        return list((await self.session.execute(statement)).unique().scalars())

    async def lock(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, Customer]:
        """The customers the caller may see, locked in id order (two writers locking the same
        customers never wait on each other in a cycle), read afresh."""
        statement = (
            self.select()
            .where(Customer.id.in_(ids))
            .order_by(Customer.id)
            .with_for_update(of=Customer)
            .execution_options(populate_existing=True)
        )
        return {c.id: c for c in (await self.session.execute(statement)).unique().scalars()}

    async def children(self, parent_id: uuid.UUID) -> list[Customer]:
        """The direct subsidiaries, locked, whoever may see them."""
        statement = (
            select(Customer)
            .where(Customer.parent_id == parent_id)
            .order_by(Customer.id)
            .with_for_update()
        )
        return list((await self.session.execute(statement)).scalars())

    async def merged_into(self, merged_customer_id: uuid.UUID) -> uuid.UUID | None:
        """The customer that `merged_customer_id` was merged into, if it was."""
        statement = (
            select(CustomerAlias.customer_id)
            .where(CustomerAlias.merged_customer_id == merged_customer_id)
            .limit(1)
        )
        found: uuid.UUID | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found

    async def hand_over_aliases(self, *, merged: Customer, survivor_id: uuid.UUID) -> None:
        """Every external id `merged` answers to (its own and those it took over in earlier
        merges) resolves to the survivor from now on."""
        taken_over = select(CustomerAlias).where(CustomerAlias.customer_id == merged.id)
        for alias in (await self.session.execute(taken_over)).scalars():
            alias.customer_id = survivor_id
        self.session.add(
            CustomerAlias(
                source=merged.source,
                external_id=merged.external_id,
                customer_id=survivor_id,
                merged_customer_id=merged.id,
            )
        )
        await self.session.flush()

    async def identity_rows(
        self,
        *,
        ids: set[uuid.UUID],
        names: set[str],
        registration_keys: set[str],
        per_value: int,
    ) -> list[IdentityRow]:
        """The customers `ids` and, for each folded name and registration id, the first
        `per_value` customers holding it, each with its owner: one query for a whole batch.
        Unconfined (duplicates are looked for across the pool)."""
        columns = (
            Customer.id,
            Customer.normalized_name,
            Customer.registration_key,
            Ownership.territory_id,
            Ownership.owner_id,
        )

        def ranked(column: Any, values: set[str]) -> Select[Any]:
            rank = func.row_number().over(partition_by=column, order_by=Customer.id)
            inner = (
                select(*columns, rank.label("rank"))
                .outerjoin(Ownership, Ownership.customer_id == Customer.id)
                .where(column.in_(values))
                .subquery()
            )
            return select(*(inner.c[c.key] for c in columns)).where(inner.c.rank <= per_value)

        parts = [
            select(*columns)
            .outerjoin(Ownership, Ownership.customer_id == Customer.id)
            .where(Customer.id.in_(ids))
        ]
        if names:
            parts.append(ranked(Customer.normalized_name, names))
        if registration_keys:
            parts.append(ranked(Customer.registration_key, registration_keys))
        rows = await self.session.execute(union_all(*parts))
        return [IdentityRow(*row) for row in rows]

    async def same_identity(self, customer: Customer, *, limit: int) -> list[Customer]:
        """Other customers the caller may see with the same folded name or registration id."""
        same = []
        if customer.normalized_name:
            same.append(Customer.normalized_name == customer.normalized_name)
        if customer.registration_key is not None:
            same.append(Customer.registration_key == customer.registration_key)
        if not same:
            return []
        statement = (
            self.select()
            .where(or_(*same), Customer.id != customer.id)
            .order_by(Customer.id)
            .limit(limit)
        )
        return list((await self.session.execute(statement)).unique().scalars())

    async def names_sharing_pairs(
        self, normalized_name: str, *, length: tuple[int, int | None], exclude: uuid.UUID, scan: int
    ) -> list[tuple[uuid.UUID, str]]:
        """Folded names of customers the caller may see whose length lies in `length` and that
        share a two-character sequence with `normalized_name`, most shared first, at most
        `scan`. Not indexed: it reads every name."""
        pairs = sorted({normalized_name[i : i + 2] for i in range(len(normalized_name) - 1)})
        shared: ColumnElement[int] = literal(0)
        for pair in pairs or [normalized_name]:
            contains = Customer.normalized_name.contains(pair, autoescape=True)
            shared = shared + case((contains, 1), else_=0)
        low, high = length
        size = func.length(Customer.normalized_name)
        conditions = [Customer.id != exclude, size >= low]
        if high is not None:
            conditions.append(size <= high)
        if self.roots is not None:
            conditions.append(self.visibility(self.roots))
        inner = (
            select(Customer.id, Customer.normalized_name, shared.label("shared"))
            .where(*conditions)
            .subquery()
        )
        statement = (
            select(inner.c.id, inner.c.normalized_name)
            .where(inner.c.shared > 0)
            .order_by(inner.c.shared.desc(), inner.c.id)
            .limit(scan)
        )
        return [(row.id, row.normalized_name) for row in await self.session.execute(statement)]

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

    async def by_ids(self, ids: set[uuid.UUID]) -> list[Customer]:
        statement = self.select().where(Customer.id.in_(ids)).order_by(Customer.id)
        return list((await self.session.execute(statement)).scalars())

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count(Customer.id)))).scalar_one())
