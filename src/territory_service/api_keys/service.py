"""API key use cases: issuing, listing, revoking, and authenticating a request."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.api_keys.models import ApiKey
from territory_service.api_keys.repository import ApiKeyRepository
from territory_service.api_keys.request_reads import Snapshot
from territory_service.api_keys.schemas import ApiKeyCreate
from territory_service.coalescing import Coalescer
from territory_service.db import utcnow
from territory_service.errors import Forbidden, InvalidReference, ServiceError, Unauthenticated
from territory_service.owners.repository import OwnerRepository
from territory_service.pagination import Page
from territory_service.security.principal import ActingOwner, Principal
from territory_service.security.scopes import Scope
from territory_service.security.secrets import (
    display_prefix,
    generate_secret,
    hash_secret,
    looks_like_key,
)
from territory_service.territories.repository import TerritoryRepository
from territory_service.transaction import transaction


class InvalidKeyRequest(ServiceError):
    status = 422
    slug = "invalid-key-request"
    title = "The key cannot be issued as asked"


async def issue_key(
    session: AsyncSession, *, data: ApiKeyCreate, created_by: uuid.UUID | None
) -> tuple[ApiKey, str]:
    """Create a key; returns it with its secret, which is never available again."""
    if data.territory_ids is not None and Scope.ADMIN in data.scopes:
        raise InvalidKeyRequest(
            "a key confined to territories cannot hold the admin scope",
            errors=[{"pointer": "#/scopes", "detail": "admin with territory_ids"}],
        )
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise InvalidKeyRequest(
            "expires_at is in the past",
            errors=[{"pointer": "#/expires_at", "detail": "must be in the future"}],
        )
    secret = generate_secret()
    async with transaction(session, resource="api key"):
        territories = TerritoryRepository(session)
        for index, territory_id in enumerate(data.territory_ids or ()):
            if await territories.get(territory_id) is None:
                raise InvalidReference(f"territory_ids/{index}", "territory", territory_id)
        key = await ApiKeyRepository(session).add(
            ApiKey(
                name=data.name,
                display_prefix=display_prefix(secret),
                secret_hash=hash_secret(secret),
                scopes=sorted(set(data.scopes)),
                territory_ids=(
                    None
                    if data.territory_ids is None
                    else sorted({str(territory_id) for territory_id in data.territory_ids})
                ),
                expires_at=data.expires_at,
                created_by_key_id=created_by,
            )
        )
    return key, secret


async def list_keys(
    session: AsyncSession, *, include_revoked: bool, limit: int, cursor: str | None
) -> Page[ApiKey]:
    async with transaction(session, resource="api key"):
        return await ApiKeyRepository(session).page(
            include_revoked=include_revoked, limit=limit, cursor=cursor
        )


async def get_key(session: AsyncSession, *, key_id: uuid.UUID) -> ApiKey:
    async with transaction(session, resource="api key"):
        return await ApiKeyRepository(session).get_or_raise(key_id)


async def revoke_key(session: AsyncSession, *, key_id: uuid.UUID) -> None:
    """Revoke a key; it fails authentication from the next request on. Revoking twice is fine."""
    repository = ApiKeyRepository(session)
    async with transaction(session, resource="api key"):
        key = await repository.get_or_raise(key_id, for_update=True)
        if key.revoked_at is None:
            await repository.update(key, {"revoked_at": utcnow()})


async def authenticate(
    reads: Coalescer[str, Snapshot],
    session_factory: async_sessionmaker[AsyncSession],
    *,
    secret: str | None,
    act_as: str | None,
) -> tuple[Principal, Snapshot]:
    """The caller behind a bearer secret, and the owner it acts for when `act_as` is given;
    with the snapshot its key was read in (see `request_reads`)."""
    if secret is None:
        raise Unauthenticated("send an API key: Authorization: Bearer tsk_...")
    if not looks_like_key(secret):
        raise Unauthenticated("the Authorization header does not hold a Territory Service key")
    secret_hash = hash_secret(secret)
    snapshot = await reads.read(secret_hash)
    key = snapshot.keys.get(secret_hash)
    if key is None:
        raise Unauthenticated("unknown API key")
    if key.revoked_at is not None:
        raise Unauthenticated("this API key was revoked", key_id=str(key.id))
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise Unauthenticated("this API key has expired", key_id=str(key.id))
    principal = Principal(
        key_id=key.id,
        scopes=frozenset(Scope(scope) for scope in key.scopes),
        territory_ids=(
            None
            if key.territory_ids is None
            else frozenset(uuid.UUID(value) for value in key.territory_ids)
        ),
    )
    if act_as is not None:
        async with session_factory() as session, transaction(session, resource="api key"):
            principal = await _acting(session, principal, act_as)
    return principal, snapshot


async def _acting(session: AsyncSession, principal: Principal, external_id: str) -> Principal:
    if not principal.has(Scope.ACT_AS):
        raise Forbidden(
            "X-Act-As needs a key with the act_as scope",
            missing_scopes=[Scope.ACT_AS.value],
            key_id=str(principal.key_id),
        )
    owner = await OwnerRepository(session).find_by(external_id=external_id)
    if owner is None or not owner.active:
        raise Forbidden(
            f"X-Act-As names no active owner with external_id {external_id!r}",
            key_id=str(principal.key_id),
        )
    return Principal(
        key_id=principal.key_id,
        scopes=principal.scopes,
        territory_ids=principal.territory_ids,
        acting_owner=ActingOwner(id=owner.id, external_id=owner.external_id),
    )
