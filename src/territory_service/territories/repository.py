from __future__ import annotations

import uuid

from sqlalchemy import exists, func, select, text
from sqlalchemy.sql.selectable import CTE

from territory_service.ownership.models import Ownership
from territory_service.pagination import Page, paginate
from territory_service.repository import Repository
from territory_service.territories.models import Territory, TerritoryMember


def subtree(root_id: uuid.UUID) -> CTE:
    """Ids of a territory and all its descendants (a recursive CTE, one column `id`)."""
    tree = select(Territory.id).where(Territory.id == root_id).cte("subtree", recursive=True)
    return tree.union_all(select(Territory.id).where(Territory.parent_id == tree.c.id))


class TerritoryRepository(Repository[Territory]):
    model = Territory
    resource_name = "territory"

    async def page(
        self, *, parent_id: uuid.UUID | None, roots_only: bool, limit: int, cursor: str | None
    ) -> Page[Territory]:
        statement = self.select()
        if parent_id is not None:
            statement = statement.where(Territory.parent_id == parent_id)
        if roots_only:
            statement = statement.where(Territory.parent_id.is_(None))
        return await paginate(self.session, statement, key=Territory.id, limit=limit, cursor=cursor)

    async def ancestor_ids(self, territory_id: uuid.UUID) -> set[uuid.UUID]:
        """The territory itself and every territory above it."""
        chain = (
            select(Territory.id, Territory.parent_id)
            .where(Territory.id == territory_id)
            .cte("ancestors", recursive=True)
        )
        chain = chain.union_all(
            select(Territory.id, Territory.parent_id).where(Territory.id == chain.c.parent_id)
        )
        return set((await self.session.execute(select(chain.c.id))).scalars())

    async def lock_hierarchy(self) -> None:
        """Serialise moves in the hierarchy, so two concurrent moves cannot build a cycle.

        SQLite needs nothing: its write transactions are already serial (BEGIN IMMEDIATE).
        """
        if self.dialect == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('territory-hierarchy'))")
            )

    async def has_children(self, territory_id: uuid.UUID) -> bool:
        statement = select(exists().where(Territory.parent_id == territory_id))
        return bool((await self.session.execute(statement)).scalar_one())

    async def count_customers(self, territory_id: uuid.UUID) -> int:
        statement = select(func.count()).where(Ownership.territory_id == territory_id)
        return int((await self.session.execute(statement)).scalar_one())


class MemberRepository(Repository[TerritoryMember]):
    model = TerritoryMember
    resource_name = "member"

    async def get_member(
        self, territory_id: uuid.UUID, owner_id: uuid.UUID, *, for_update: bool = False
    ) -> TerritoryMember | None:
        statement = self.select().where(
            TerritoryMember.territory_id == territory_id, TerritoryMember.owner_id == owner_id
        )
        if for_update:
            statement = statement.with_for_update()
        member: TerritoryMember | None = (
            await self.session.execute(statement)
        ).scalar_one_or_none()
        return member

    async def page(
        self, *, territory_id: uuid.UUID, limit: int, cursor: str | None
    ) -> Page[TerritoryMember]:
        statement = self.select().where(TerritoryMember.territory_id == territory_id)
        return await paginate(
            self.session, statement, key=TerritoryMember.owner_id, limit=limit, cursor=cursor
        )
