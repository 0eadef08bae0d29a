"""The demo admin key that `make run` prints, kept in a file so scripts can read it."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from territory_service.api_keys import service as api_keys
from territory_service.api_keys.request_reads import request_reads
from territory_service.api_keys.schemas import ApiKeyCreate
from territory_service.errors import Unauthenticated
from territory_service.security.scopes import Scope


async def ensure_demo_admin_key(session: AsyncSession, path: Path) -> tuple[str, bool]:
    """The key in `path` while it still authenticates, else a new admin key written there.

    Returns the secret and whether it is new.
    """
    if path.exists():
        secret = path.read_text(encoding="utf-8").strip()
        engine = session.bind
        assert isinstance(engine, AsyncEngine)
        try:
            await api_keys.authenticate(
                request_reads(engine), async_sessionmaker(engine), secret=secret, act_as=None
            )
        except Unauthenticated:
            pass
        else:
            return secret, False
    _, secret = await api_keys.issue_key(
        session, data=ApiKeyCreate(name="demo admin", scopes=[Scope.ADMIN]), created_by=None
    )
    path.write_text(secret + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return secret, True
