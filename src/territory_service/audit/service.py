"""The audit trail: recording requests and reading them back."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.audit.models import AuditEntry
from territory_service.audit.repository import AuditFilter, AuditRepository
from territory_service.pagination import Page
from territory_service.transaction import transaction


async def record(
    session: AsyncSession,
    *,
    key_id: uuid.UUID | None,
    acting_owner_id: uuid.UUID | None,
    method: str,
    path: str,
    status: int,
    request_id: str | None,
    resource_ids: list[str],
) -> None:
    async with transaction(session, resource="audit entry"):
        await AuditRepository(session).add(
            AuditEntry(
                key_id=key_id,
                acting_owner_id=acting_owner_id,
                method=method,
                path=path[:500],
                status=status,
                request_id=request_id,
                resource_ids=resource_ids,
            )
        )


async def list_entries(
    session: AsyncSession, *, filters: AuditFilter, limit: int, cursor: str | None
) -> Page[AuditEntry]:
    async with transaction(session, resource="audit entry"):
        return await AuditRepository(session).page(filters, limit=limit, cursor=cursor)
