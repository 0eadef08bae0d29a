import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from territory_service.api.authentication import Admin
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    LimitQuery,
    SessionDep,
)
from territory_service.api.problems import problem_responses
from territory_service.audit import service
from territory_service.audit.repository import AuditFilter
from territory_service.audit.schemas import AuditEntry, AuditPage
from territory_service.schemas import StorableText

router = APIRouter(prefix="/v1/audit", tags=["audit"])


async def audit_filter(
    key_id: Annotated[uuid.UUID | None, Query(description="Requests made with this key.")] = None,
    acting_owner_id: Annotated[
        uuid.UUID | None, Query(description="Requests made for this owner (X-Act-As).")
    ] = None,
    resource_id: Annotated[
        StorableText | None,
        Query(max_length=64, description="Requests naming or creating this id."),
    ] = None,
    method: Annotated[str | None, Query(pattern="^[A-Z]{3,7}$")] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    since: Annotated[AwareDatetime | None, Query(description="At or after this time.")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before this time.")] = None,
) -> AuditFilter:
    return AuditFilter(
        key_id=key_id,
        acting_owner_id=acting_owner_id,
        resource_id=resource_id,
        method=method,
        status=status,
        since=since,
        until=until,
    )


@router.get("", response_model=AuditPage, responses=problem_responses())
async def list_audit_entries(
    session: SessionDep,
    principal: Admin,  # noqa: ARG001 (checks the scope)
    filters: Annotated[AuditFilter, Depends(audit_filter)],
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> AuditPage:
    """The audit trail, oldest first: every write, and every refused authentication or
    authorisation, with the key, acting owner, status, request id and resource ids."""
    page = await service.list_entries(session, filters=filters, limit=limit, cursor=cursor)
    return AuditPage(
        items=[AuditEntry.model_validate(e) for e in page.items], next_cursor=page.next_cursor
    )
