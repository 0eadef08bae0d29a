import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from territory_service.api.authentication import OwnersRead, OwnersWrite, TransfersApprove
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    ExpectedVersionDep,
    LimitQuery,
    SessionDep,
    set_etag,
    set_location,
)
from territory_service.api.problems import problem_responses
from territory_service.jobs.schemas import Job
from territory_service.owners import handover, service
from territory_service.owners.schemas import Handover, Owner, OwnerCreate, OwnerPage, OwnerUpdate

router = APIRouter(prefix="/v1/owners", tags=["owners"])


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=Owner, responses=problem_responses(409)
)
async def create_owner(
    body: OwnerCreate, session: SessionDep, principal: OwnersWrite, response: Response
) -> Owner:
    """Create an owner (a sales rep or a team queue). `external_id` is the CRM's user id."""
    owner = await service.create_owner(session, data=body, principal=principal)
    set_location(response, f"/v1/owners/{owner.id}", owner.version)
    return Owner.model_validate(owner)


@router.get("", response_model=OwnerPage, responses=problem_responses())
async def list_owners(
    session: SessionDep,
    principal: OwnersRead,
    active: Annotated[bool | None, Query(description="Only active or inactive owners.")] = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> OwnerPage:
    """List owners in creation order."""
    page = await service.list_owners(
        session, active=active, limit=limit, cursor=cursor, principal=principal
    )
    return OwnerPage(
        items=[Owner.model_validate(o) for o in page.items], next_cursor=page.next_cursor
    )


@router.get("/{owner_id}", response_model=Owner, responses=problem_responses(404))
async def get_owner(
    owner_id: uuid.UUID, session: SessionDep, principal: OwnersRead, response: Response
) -> Owner:
    """Get one owner."""
    owner = await service.get_owner(session, owner_id=owner_id, principal=principal)
    set_etag(response, owner.version)
    return Owner.model_validate(owner)


@router.patch("/{owner_id}", response_model=Owner, responses=problem_responses(400, 404, 409, 412))
async def update_owner(
    owner_id: uuid.UUID,
    body: OwnerUpdate,
    session: SessionDep,
    principal: OwnersWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> Owner:
    """Change an owner. Deactivating one stops every assignment to them; it needs them to hold
    no customers (409 otherwise: hand them over first)."""
    owner = await service.update_owner(
        session, owner_id=owner_id, data=body, expected=expected, principal=principal
    )
    set_etag(response, owner.version)
    return Owner.model_validate(owner)


@router.delete(
    "/{owner_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 409, 412),
)
async def delete_owner(
    owner_id: uuid.UUID, session: SessionDep, principal: OwnersWrite, expected: ExpectedVersionDep
) -> None:
    """Delete an owner who owns no customers (409 otherwise: deactivate or hand over instead)."""
    await service.delete_owner(session, owner_id=owner_id, expected=expected, principal=principal)


@router.post(
    "/{owner_id}/handover",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Job,
    responses=problem_responses(403, 404),
)
async def hand_over(
    owner_id: uuid.UUID,
    body: Handover,
    session: SessionDep,
    principal: TransfersApprove,
    response: Response,
) -> Job:
    """Hand over everything the owner holds, as a job (202, `Location: /v1/jobs/{id}`): to
    `to_owner_id` in each territory where they are a member, otherwise to the member the
    territory's strategy picks (never the leaving owner), or to its pool when no member has
    room. Territories and locks stay as they are; each customer gets its event (source
    `transfer`), and a group root's subsidiaries follow it. Then the owner can be deactivated.
    Needs an unconfined key (403)."""
    job = await handover.start_handover(session, owner_id=owner_id, data=body, principal=principal)
    set_location(response, f"/v1/jobs/{job.id}", job.version)
    return Job.of(job)
