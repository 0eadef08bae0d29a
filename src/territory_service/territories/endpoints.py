import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from territory_service.api.authentication import TerritoriesRead, TerritoriesWrite
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
from territory_service.territories import service
from territory_service.territories.schemas import (
    Member,
    MemberPage,
    MemberPut,
    Territory,
    TerritoryCreate,
    TerritoryPage,
    TerritoryUpdate,
)

router = APIRouter(prefix="/v1/territories", tags=["territories"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Territory,
    responses=problem_responses(409),
)
async def create_territory(
    body: TerritoryCreate, session: SessionDep, principal: TerritoriesWrite, response: Response
) -> Territory:
    """Create a territory, at the root or below `parent_id`."""
    territory = await service.create_territory(session, data=body, principal=principal)
    set_location(response, f"/v1/territories/{territory.id}", territory.version)
    return Territory.model_validate(territory)


@router.get("", response_model=TerritoryPage, responses=problem_responses())
async def list_territories(
    session: SessionDep,
    principal: TerritoriesRead,
    parent_id: Annotated[uuid.UUID | None, Query(description="Only children of this one.")] = None,
    roots_only: Annotated[bool, Query(description="Only territories without a parent.")] = False,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> TerritoryPage:
    """List territories in creation order."""
    page = await service.list_territories(
        session,
        parent_id=parent_id,
        roots_only=roots_only,
        limit=limit,
        cursor=cursor,
        principal=principal,
    )
    return TerritoryPage(
        items=[Territory.model_validate(t) for t in page.items], next_cursor=page.next_cursor
    )


@router.get("/{territory_id}", response_model=Territory, responses=problem_responses(404))
async def get_territory(
    territory_id: uuid.UUID, session: SessionDep, principal: TerritoriesRead, response: Response
) -> Territory:
    """Get one territory."""
    territory = await service.get_territory(session, territory_id=territory_id, principal=principal)
    set_etag(response, territory.version)
    return Territory.model_validate(territory)


@router.patch(
    "/{territory_id}", response_model=Territory, responses=problem_responses(400, 404, 409, 412)
)
async def update_territory(
    territory_id: uuid.UUID,
    body: TerritoryUpdate,
    session: SessionDep,
    principal: TerritoriesWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> Territory:
    """Change a territory; changing `parent_id` moves it with its whole subtree."""
    territory = await service.update_territory(
        session, territory_id=territory_id, data=body, expected=expected, principal=principal
    )
    set_etag(response, territory.version)
    return Territory.model_validate(territory)


@router.delete(
    "/{territory_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 409, 412),
)
async def delete_territory(
    territory_id: uuid.UUID,
    session: SessionDep,
    principal: TerritoriesWrite,
    expected: ExpectedVersionDep,
) -> None:
    """Delete a territory without children or customers (409 otherwise); members go with it."""
    await service.delete_territory(
        session, territory_id=territory_id, expected=expected, principal=principal
    )


@router.get("/{territory_id}/members", response_model=MemberPage, responses=problem_responses(404))
async def list_members(
    territory_id: uuid.UUID,
    session: SessionDep,
    principal: TerritoriesRead,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> MemberPage:
    """List the owners who are members of a territory."""
    page = await service.list_members(
        session, territory_id=territory_id, limit=limit, cursor=cursor, principal=principal
    )
    return MemberPage(
        items=[Member.model_validate(m) for m in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/{territory_id}/members/{owner_id}",
    response_model=Member,
    responses=problem_responses(404),
)
async def get_member(
    territory_id: uuid.UUID,
    owner_id: uuid.UUID,
    session: SessionDep,
    principal: TerritoriesRead,
    response: Response,
) -> Member:
    """Get one owner's membership of a territory."""
    member = await service.get_member(
        session, territory_id=territory_id, owner_id=owner_id, principal=principal
    )
    set_etag(response, member.version)
    return Member.model_validate(member)


@router.put(
    "/{territory_id}/members/{owner_id}",
    response_model=Member,
    responses={
        201: {"model": Member, "description": "The owner became a member"},
        **problem_responses(400, 404, 412),
    },
)
async def put_member(
    territory_id: uuid.UUID,
    owner_id: uuid.UUID,
    body: MemberPut,
    session: SessionDep,
    principal: TerritoriesWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> Member:
    """Make an owner a member of a territory (201), or replace their membership (200)."""
    member, created = await service.put_member(
        session,
        territory_id=territory_id,
        owner_id=owner_id,
        data=body,
        expected=expected,
        principal=principal,
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
        set_location(response, f"/v1/territories/{territory_id}/members/{owner_id}", member.version)
    else:
        set_etag(response, member.version)
    return Member.model_validate(member)


@router.delete(
    "/{territory_id}/members/{owner_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 412),
)
async def remove_member(
    territory_id: uuid.UUID,
    owner_id: uuid.UUID,
    session: SessionDep,
    principal: TerritoriesWrite,
    expected: ExpectedVersionDep,
) -> None:
    """Remove an owner from a territory."""
    await service.remove_member(
        session,
        territory_id=territory_id,
        owner_id=owner_id,
        expected=expected,
        principal=principal,
    )
