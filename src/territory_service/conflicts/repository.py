from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from territory_service.conflicts.models import Conflict, ConflictStatus
from territory_service.db import json_array_contains
from territory_service.pagination import Page, paginate
from territory_service.repository import Repository, where_equal
from territory_service.rules.resolution import ConflictKind
from territory_service.territories.repository import in_subtrees


def in_territories(roots: frozenset[uuid.UUID]) -> ColumnElement[bool]:
    """The conflict's territory lies in the subtree of one of `roots` (never when it has none)."""
    # `in_subtrees` is typed for non-null territory columns; SQL's `NULL IN (...)` is not true.
    territory = cast("InstrumentedAttribute[uuid.UUID]", Conflict.territory_id)
    return in_subtrees(territory, roots)


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
            statement = statement.where(
                json_array_contains(Conflict.customer_ids, str(filters.customer_id), self.dialect)
            )
        return await paginate(self.session, statement, key=Conflict.id, limit=limit, cursor=cursor)
