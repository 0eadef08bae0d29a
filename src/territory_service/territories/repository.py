from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.selectable import CTE

from territory_service.ownership.models import Ownership
from territory_service.pagination import Page, paginate
from territory_service.repository import Repository, TreeRepository
from territory_service.territories.models import Territory, TerritoryMember


def subtree(*root_ids: uuid.UUID) -> CTE:
    """Ids of the territories and all their descendants (a recursive CTE, one column `id`)."""
    tree = select(Territory.id).where(Territory.id.in_(root_ids)).cte(recursive=True)
    return tree.union_all(select(Territory.id).where(Territory.parent_id == tree.c.id))


def in_subtrees(
    column: InstrumentedAttribute[uuid.UUID], roots: frozenset[uuid.UUID]
) -> ColumnElement[bool]:
    """`column` (a territory id) lies in the subtree of one of `roots`."""
    return column.in_(select(subtree(*roots).c.id))


class TerritoryRepository(TreeRepository[Territory]):
    model = Territory
    resource_name = "territory"

    def visibility(self, roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:
        return in_subtrees(Territory.id, roots)

    async def page(
        self, *, parent_id: uuid.UUID | None, roots_only: bool, limit: int, cursor: str | None
    ) -> Page[Territory]:
        statement = self.select()
        if parent_id is not None:
            statement = statement.where(Territory.parent_id == parent_id)
        if roots_only:
            statement = statement.where(Territory.parent_id.is_(None))
        return await paginate(self.session, statement, key=Territory.id, limit=limit, cursor=cursor)

    async def ids(self) -> set[uuid.UUID]:
        return set(
            (await self.session.execute(self.select().with_only_columns(Territory.id))).scalars()
        )

    async def by_ids(self, ids: set[uuid.UUID]) -> list[Territory]:
        if not ids:
            return []
        return list(
            (await self.session.execute(self.select().where(Territory.id.in_(ids)))).scalars()
        )

    async def count_customers(self, territory_id: uuid.UUID) -> int:
        statement = select(func.count()).where(Ownership.territory_id == territory_id)
        return int((await self.session.execute(statement)).scalar_one())


class MemberRepository(Repository[TerritoryMember]):
    model = TerritoryMember
    resource_name = "member"

    def visibility(self, roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:
        return in_subtrees(TerritoryMember.territory_id, roots)

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

    async def of_territories(self, territory_ids: set[uuid.UUID]) -> list[TerritoryMember]:
        if not territory_ids:
            return []
        statement = self.select().where(TerritoryMember.territory_id.in_(territory_ids))
        return list((await self.session.execute(statement)).scalars())
