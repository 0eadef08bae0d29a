from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from territory_service.audit.models import AuditEntry
from territory_service.db import json_array_contains
from territory_service.pagination import Page, paginate
from territory_service.repository import Repository, where_equal


@dataclass(frozen=True)
class AuditFilter:
    key_id: uuid.UUID | None = None
    acting_owner_id: uuid.UUID | None = None
    resource_id: str | None = None
    method: str | None = None
    status: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


class AuditRepository(Repository[AuditEntry]):
    model = AuditEntry
    resource_name = "audit entry"

    async def page(
        self, filters: AuditFilter, *, limit: int, cursor: str | None
    ) -> Page[AuditEntry]:
        statement = where_equal(
            self.select(), filters, ("key_id", "acting_owner_id", "method", "status")
        )
        if filters.since is not None:
            statement = statement.where(AuditEntry.created_at >= filters.since)
        if filters.until is not None:
            statement = statement.where(AuditEntry.created_at < filters.until)
        if filters.resource_id is not None:
            statement = statement.where(
                json_array_contains(AuditEntry.resource_ids, filters.resource_id, self.dialect)
            )
        return await paginate(
            self.session, statement, key=AuditEntry.id, limit=limit, cursor=cursor
        )
