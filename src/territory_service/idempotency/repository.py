from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, cast

from sqlalchemy import Table, and_, delete, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.api_keys.models import ApiKey
from territory_service.db import dialect_insert
from territory_service.idempotency.models import IdempotencyRecord

Record = IdempotencyRecord
_TABLE = cast(Table, IdempotencyRecord.__table__)


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def usable_key_id(self, secret_hash: str, *, now: dt.datetime) -> uuid.UUID | None:
        """The id of the API key with this secret, unless it is revoked or expired."""
        statement = select(ApiKey.id).where(
            ApiKey.secret_hash == secret_hash,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
        )
        key_id: uuid.UUID | None = (await self.session.execute(statement)).scalar_one_or_none()
        return key_id

    async def purge_expired(self, *, now: dt.datetime, limit: int) -> None:
        """Delete up to `limit` records past their retention, whoever they belong to."""
        expired = (
            select(Record.key_id, Record.key)
            .where(Record.expires_at <= now)
            .order_by(Record.expires_at)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            # Concurrent purges take disjoint rows instead of waiting on (or deadlocking over)
            # each other's.
            expired = expired.with_for_update(skip_locked=True)
        await self.session.execute(
            delete(Record)
            .where(tuple_(Record.key_id, Record.key).in_(expired))
            .execution_options(synchronize_session=False)
        )

    async def drop_stale(self, key_id: uuid.UUID, key: str, *, now: dt.datetime) -> None:
        """Delete the key's record if it expired, or if its request never answered and its
        lease lapsed (the process running it died)."""
        await self.session.execute(
            delete(Record)
            .where(Record.key_id == key_id, Record.key == key)
            .where(
                or_(
                    Record.expires_at <= now,
                    and_(Record.response_status.is_(None), Record.lease_until <= now),
                )
            )
            .execution_options(synchronize_session=False)
        )

    async def insert_if_absent(self, values: dict[str, Any]) -> None:
        statement = dialect_insert(self.dialect, _TABLE).values(**values)
        await self.session.execute(statement.on_conflict_do_nothing())

    async def get(self, key_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        statement = (
            select(Record)
            .where(Record.key_id == key_id, Record.key == key)
            .execution_options(populate_existing=True)
        )
        record: IdempotencyRecord | None = (
            await self.session.execute(statement)
        ).scalar_one_or_none()
        return record

    async def update_leased(
        self, key_id: uuid.UUID, key: str, token: uuid.UUID, values: dict[str, Any]
    ) -> None:
        """Change the record only while the request holding `token` still holds its lease."""
        await self.session.execute(
            update(Record)
            .where(Record.key_id == key_id, Record.key == key, Record.lease_token == token)
            .where(Record.response_status.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def delete_leased(self, key_id: uuid.UUID, key: str, token: uuid.UUID) -> None:
        await self.session.execute(
            delete(Record)
            .where(Record.key_id == key_id, Record.key == key, Record.lease_token == token)
            .where(Record.response_status.is_(None))
            .execution_options(synchronize_session=False)
        )
