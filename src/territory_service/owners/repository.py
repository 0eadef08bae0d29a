from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable

from sqlalchemy import ColumnElement, exists, func, select

from territory_service.owners.models import Owner
from territory_service.ownership.models import Ownership
from territory_service.pagination import Page, paginate
from territory_service.repository import Repository
from territory_service.territories.models import TerritoryMember
from territory_service.territories.repository import in_subtrees


class OwnerLock(enum.Enum):
    """How a writer locks the owners it gives customers to (the owner lock of DESIGN §3.6)."""

    # FOR KEY SHARE, the weakest lock PostgreSQL has: it waits for nothing but a deactivation
    # (which locks the owner FOR UPDATE, so it waits for every transaction giving the owner
    # customers and then counts them); a deactivation that committed first is seen.
    GIVING = "key share"
    # FOR NO KEY UPDATE: one owner's claims queue behind each other (the holding and daily
    # limits count what the previous claim committed), while other writers' key-share locks
    # and foreign-key checks pass.
    CLAIMING = "no key update"


class OwnerRepository(Repository[Owner]):
    model = Owner
    resource_name = "owner"

    def visibility(self, roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:
        """Owners who are members of one of those territories."""
        return exists().where(
            TerritoryMember.owner_id == Owner.id, in_subtrees(TerritoryMember.territory_id, roots)
        )

    async def page(self, *, active: bool | None, limit: int, cursor: str | None) -> Page[Owner]:
        statement = self.select()
        if active is not None:
            statement = statement.where(Owner.active == active)
        return await paginate(self.session, statement, key=Owner.id, limit=limit, cursor=cursor)

    async def count_owned_customers(self, owner_id: uuid.UUID) -> int:
        statement = select(func.count()).where(Ownership.owner_id == owner_id)
        return int((await self.session.execute(statement)).scalar_one())

    async def existing_ids(self, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        rows = await self.session.execute(select(Owner.id).where(Owner.id.in_(ids)))
        return set(rows.scalars())

    async def locked(
        self, ids: Iterable[uuid.UUID], *, lock: OwnerLock = OwnerLock.GIVING
    ) -> list[Owner]:
        """The owners, read afresh under `lock` until the transaction ends, locked in id order
        (every writer takes them in the same order, so two writers cannot deadlock)."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        statement = (
            select(Owner)
            .where(Owner.id.in_(wanted))
            .order_by(Owner.id)
            .with_for_update(read=lock is OwnerLock.GIVING, key_share=True)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.execute(statement)).scalars())

    async def by_ids(self, ids: set[uuid.UUID]) -> list[Owner]:
        if not ids:
            return []
        return list((await self.session.execute(self.select().where(Owner.id.in_(ids)))).scalars())
