from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, or_, select

from territory_service.pagination import Page, paginate
from territory_service.repository import Repository, where_equal
from territory_service.territories.repository import in_subtrees
from territory_service.transfers.models import Transfer, TransferItem, TransferStatus


@dataclass(frozen=True)
class TransferFilter:
    status: TransferStatus | None = None
    owner_id: uuid.UUID | None = None  # the target owner, or an owner a customer leaves
    territory_id: uuid.UUID | None = None  # a customer leaves or enters it (or its subtree)


def _touches(roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:
    return exists().where(
        TransferItem.transfer_id == Transfer.id,
        or_(
            in_subtrees(TransferItem.from_territory_id, roots),
            in_subtrees(TransferItem.to_territory_id, roots),
        ),
    )


class TransferRepository(Repository[Transfer]):
    model = Transfer
    resource_name = "transfer"

    def visibility(self, roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:
        """Transfers that move a customer out of or into those territories."""
        return _touches(roots)

    async def page(
        self, filters: TransferFilter, *, limit: int, cursor: str | None
    ) -> Page[Transfer]:
        statement = where_equal(self.select(), filters, ("status",))
        if filters.owner_id is not None:
            leaves = exists().where(
                TransferItem.transfer_id == Transfer.id,
                TransferItem.from_owner_id == filters.owner_id,
            )
            statement = statement.where(or_(Transfer.to_owner_id == filters.owner_id, leaves))
        if filters.territory_id is not None:
            statement = statement.where(_touches(frozenset({filters.territory_id})))
        return await paginate(self.session, statement, key=Transfer.id, limit=limit, cursor=cursor)

    async def items(self, transfer_id: uuid.UUID) -> list[TransferItem]:
        statement = (
            select(TransferItem)
            .where(TransferItem.transfer_id == transfer_id)
            .order_by(TransferItem.customer_id)
        )
        return list((await self.session.scalars(statement)).all())
