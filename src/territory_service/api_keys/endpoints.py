import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from territory_service.api.authentication import Admin
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    LimitQuery,
    SessionDep,
    set_etag,
    set_location,
)
from territory_service.api.problems import problem_responses
from territory_service.api_keys import service
from territory_service.api_keys.schemas import ApiKey, ApiKeyCreate, ApiKeyPage, ApiKeyWithSecret

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyWithSecret,
    responses=problem_responses(),
)
async def create_api_key(
    body: ApiKeyCreate, session: SessionDep, principal: Admin, response: Response
) -> ApiKeyWithSecret:
    """Issue an API key. The response holds the secret; it is never shown again."""
    key, secret = await service.issue_key(session, data=body, created_by=principal.key_id)
    set_location(response, f"/v1/api-keys/{key.id}", key.version)
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyWithSecret.model_validate(
        {**ApiKey.model_validate(key).model_dump(), "secret": secret}
    )


@router.get("", response_model=ApiKeyPage, responses=problem_responses())
async def list_api_keys(
    session: SessionDep,
    principal: Admin,  # noqa: ARG001 (checks the scope)
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> ApiKeyPage:
    """List API keys (never their secrets)."""
    page = await service.list_keys(
        session, include_revoked=include_revoked, limit=limit, cursor=cursor
    )
    return ApiKeyPage(
        items=[ApiKey.model_validate(k) for k in page.items], next_cursor=page.next_cursor
    )


@router.get("/{key_id}", response_model=ApiKey, responses=problem_responses(404))
async def get_api_key(
    key_id: uuid.UUID,
    session: SessionDep,
    principal: Admin,  # noqa: ARG001 (checks the scope)
    response: Response,
) -> ApiKey:
    """Get one API key (never its secret)."""
    key = await service.get_key(session, key_id=key_id)
    set_etag(response, key.version)
    return ApiKey.model_validate(key)


@router.delete(
    "/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
async def revoke_api_key(
    key_id: uuid.UUID,
    session: SessionDep,
    principal: Admin,  # noqa: ARG001 (checks the scope)
) -> None:
    """Revoke an API key: every request with it fails with 401 from now on, on every replica."""
    await service.revoke_key(session, key_id=key_id)
