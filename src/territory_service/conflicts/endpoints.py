import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from territory_service.api.authentication import CustomersRead, CustomersWrite
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    ExpectedVersionDep,
    LimitQuery,
    SessionDep,
    set_etag,
)
from territory_service.api.problems import problem_responses
from territory_service.conflicts import service
from territory_service.conflicts.models import ConflictStatus
from territory_service.conflicts.repository import ConflictFilter
from territory_service.conflicts.schemas import (
    Conflict,
    ConflictDismiss,
    ConflictPage,
    ConflictResolve,
)
from territory_service.engine.resolution import ConflictKind

router = APIRouter(prefix="/v1/conflicts", tags=["conflicts"])


async def conflict_filter(
    kind: Annotated[ConflictKind | None, Query(description="Only conflicts of this kind.")] = None,
    status: Annotated[
        ConflictStatus | None, Query(description="Only open, resolved or dismissed conflicts.")
    ] = None,
    territory_id: Annotated[
        uuid.UUID | None, Query(description="Conflicts in this territory or below it.")
    ] = None,
    customer_id: Annotated[
        uuid.UUID | None,
        Query(
            description="Conflicts naming this customer, whether or not `customer_ids` shows it."
        ),
    ] = None,
) -> ConflictFilter:
    return ConflictFilter(
        kind=kind, status=status, territory_id=territory_id, customer_id=customer_id
    )


@router.get("", response_model=ConflictPage, responses=problem_responses())
async def list_conflicts(
    session: SessionDep,
    principal: CustomersRead,
    filters: Annotated[ConflictFilter, Depends(conflict_filter)],
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> ConflictPage:
    """List conflicts in the order they were first detected; filters combine with AND."""
    page = await service.list_conflicts(
        session, filters=filters, limit=limit, cursor=cursor, principal=principal
    )
    return ConflictPage(
        items=[Conflict.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get("/{conflict_id}", response_model=Conflict, responses=problem_responses(404))
async def get_conflict(
    conflict_id: uuid.UUID, session: SessionDep, principal: CustomersRead, response: Response
) -> Conflict:
    """Get one conflict."""
    conflict = await service.get_conflict(session, conflict_id=conflict_id, principal=principal)
    set_etag(response, conflict.version)
    return Conflict.model_validate(conflict)


@router.post(
    "/{conflict_id}/resolve",
    response_model=Conflict,
    responses=problem_responses(400, 403, 404, 409, 412),
)
async def resolve_conflict(
    conflict_id: uuid.UUID,
    body: ConflictResolve,
    session: SessionDep,
    principal: CustomersWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> Conflict:
    """Close an open conflict as resolved, with a note (409 when it is already closed).

    The resolution may carry an `action`, carried out in the same transaction so that the
    conflict closes only if it succeeds: `assign` one of the conflict's customers to an owner
    (locked, as `PUT /v1/customers/{id}/ownership`; needs `transfers:approve`), or `merge` two
    of its customers (as `POST /v1/customers/{id}/merge`; needs `customers:write`). The
    action's errors answer as they would on their own. The key and the owner it acts for
    (`X-Act-As`) are kept with the conflict. Detecting the same cause again later opens a new
    conflict."""
    conflict = await service.resolve_conflict(
        session, conflict_id=conflict_id, data=body, expected=expected, principal=principal
    )
    set_etag(response, conflict.version)
    return Conflict.model_validate(conflict)


@router.post(
    "/{conflict_id}/dismiss",
    response_model=Conflict,
    responses=problem_responses(400, 404, 409, 412),
)
async def dismiss_conflict(
    conflict_id: uuid.UUID,
    body: ConflictDismiss,
    session: SessionDep,
    principal: CustomersWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> Conflict:
    """Close an open conflict as not needing action, with a note (409 when it is already closed).

    Detecting the same cause again later opens a new conflict."""
    conflict = await service.dismiss_conflict(
        session, conflict_id=conflict_id, data=body, expected=expected, principal=principal
    )
    set_etag(response, conflict.version)
    return Conflict.model_validate(conflict)
