from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import or_, update

from territory_service.api_keys.models import ApiKey
from territory_service.pagination import Page, paginate
from territory_service.repository import Repository


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey
    resource_name = "api key"

    async def by_secret_hash(self, secret_hash: str) -> ApiKey | None:
        return await self.find_by(secret_hash=secret_hash)

    async def page(self, *, include_revoked: bool, limit: int, cursor: str | None) -> Page[ApiKey]:
        statement = self.select()
        if not include_revoked:
            statement = statement.where(ApiKey.revoked_at.is_(None))
        return await paginate(self.session, statement, key=ApiKey.id, limit=limit, cursor=cursor)

    async def touch(self, key_id: uuid.UUID, *, now: dt.datetime, older_than: dt.datetime) -> None:
        """Record use, at most once per interval: a write per request would serialise callers."""
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < older_than))
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
