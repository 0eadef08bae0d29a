from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from territory_service.api_keys.models import ApiKey
from territory_service.pagination import Page, paginate
from territory_service.repository import Repository


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey
    resource_name = "api key"

    async def page(self, *, include_revoked: bool, limit: int, cursor: str | None) -> Page[ApiKey]:
        statement = self.select()
        if not include_revoked:
            statement = statement.where(ApiKey.revoked_at.is_(None))
        return await paginate(self.session, statement, key=ApiKey.id, limit=limit, cursor=cursor)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What authenticating a request reads of its key."""

    id: uuid.UUID
    secret_hash: str
    scopes: list[str]
    territory_ids: list[str] | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


async def touch(
    connection: AsyncConnection,
    key_ids: Collection[uuid.UUID],
    *,
    now: dt.datetime,
    older_than: dt.datetime,
) -> None:
    """Record use, at most once per interval: a write per request would serialise callers."""
    await connection.execute(
        update(ApiKey)
        .where(ApiKey.id.in_(key_ids))
        .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < older_than))
        .values(last_used_at=now)
    )
