from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import InstrumentedAttribute

from territory_service.conflicts.models import Conflict, ConflictCustomer, ConflictStatus
from territory_service.db import utcnow
from territory_service.engine.resolution import ConflictKind
from territory_service.errors import NotFound
from territory_service.pagination import Page, paginate
from territory_service.repository import Repository, where_equal
from territory_service.security.principal import Principal
from territory_service.territories.repository import in_subtrees


def in_territories(roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:
    """The conflict's territory lies in the subtree of one of `roots` (never when it has none)."""
    # `in_subtrees` is typed for non-null territory columns; SQL's `NULL IN (...)` is not true.
    territory = cast("InstrumentedAttribute[uuid.UUID]", Conflict.territory_id)
    return in_subtrees(territory, roots)


def names_customer(customer_id: uuid.UUID) -> ColumnElement[bool]:
    """The conflict names the customer (any of them, not only those in its sample)."""
    return exists().where(
        ConflictCustomer.conflict_id == Conflict.id, ConflictCustomer.customer_id == customer_id
    )


@dataclass(frozen=True)
class ConflictFilter:
    kind: ConflictKind | None = None
    status: ConflictStatus | None = None
    territory_id: uuid.UUID | None = None  # with its whole subtree
    customer_id: uuid.UUID | None = None


class ConflictRepository(Repository[Conflict]):
    model = Conflict
    resource_name = "conflict"

    def visibility(self, roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:
        """Conflicts in those territories; a conflict without a territory is in none."""
        return in_territories(roots)

    async def page(
        self, filters: ConflictFilter, *, limit: int, cursor: str | None
    ) -> Page[Conflict]:
        statement = where_equal(self.select(), filters, ("kind", "status"))
        if filters.territory_id is not None:
            statement = statement.where(in_territories(frozenset({filters.territory_id})))
        if filters.customer_id is not None:
            statement = statement.where(names_customer(filters.customer_id))
        return await paginate(self.session, statement, key=Conflict.id, limit=limit, cursor=cursor)

    async def lock(self, conflict_id: uuid.UUID) -> Conflict:
        """The conflict as stored now, locked until the transaction ends."""
        statement = (
            self.select()
            .where(Conflict.id == conflict_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        conflict: Conflict | None = (await self.session.execute(statement)).scalar_one_or_none()
        if conflict is None:
            raise NotFound(self.resource_name, conflict_id)
        return conflict

    async def open_duplicates_of(self, customer_id: uuid.UUID) -> list[Conflict]:
        """Open `duplicate_customer` conflicts naming the customer, locked in id order."""
        statement = (
            select(Conflict)
            .where(
                Conflict.kind == ConflictKind.DUPLICATE_CUSTOMER,
                Conflict.status == ConflictStatus.OPEN,
                names_customer(customer_id),
            )
            .order_by(Conflict.id)
            .with_for_update()
        )
        return list((await self.session.execute(statement)).scalars())

    async def names(self, conflict_id: uuid.UUID, customer_id: uuid.UUID) -> bool:
        """Whether the conflict names the customer."""
        statement = select(
            exists().where(
                ConflictCustomer.conflict_id == conflict_id,
                ConflictCustomer.customer_id == customer_id,
            )
        )
        return bool(await self.session.scalar(statement))

    async def close(
        self,
        conflict: Conflict,
        status: ConflictStatus,
        *,
        note: str,
        principal: Principal,
        action: dict[str, Any] | None = None,
    ) -> None:
        """Close the conflict with a note, the action carried out and who closed it. Once
        closed, the row leaves the open-cause index: the next detection opens a new one."""
        await self.update(
            conflict,
            {
                "status": status,
                "resolution_note": note,
                "resolution_action": action,
                "closed_at": utcnow(),
                "closed_by_key_id": principal.key_id,
                "closed_by_owner_id": principal.acting_owner.id if principal.acting_owner else None,
            },
        )
