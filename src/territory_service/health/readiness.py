"""Readiness: can this process serve requests against an up-to-date schema?"""

from __future__ import annotations

import logging
from functools import lru_cache

from alembic.script import ScriptDirectory
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from territory_service.api.problems import problem_response
from territory_service.config import migrations_dir
from territory_service.health.schemas import Readiness

logger = logging.getLogger(__name__)


@lru_cache
def expected_migration() -> str:
    head = ScriptDirectory(str(migrations_dir())).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


# Readiness returns once the database is back or migrated; a prober may ask again shortly.
NOT_READY_RETRY = {"Retry-After": "5"}


async def check_readiness(request: Request) -> Readiness | JSONResponse:
    expected = expected_migration()
    try:
        async with request.app.state.engine.connect() as connection:
            current = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("readiness: database unreachable", extra={"error": type(exc).__name__})
        return problem_response(
            request,
            status=503,
            slug="not-ready",
            headers=NOT_READY_RETRY,
            title="Service unavailable",
            detail="the database is unreachable or has no schema; run the migrations",
        )
    if current != expected:
        return problem_response(
            request,
            status=503,
            slug="not-ready",
            headers=NOT_READY_RETRY,
            title="Service unavailable",
            detail=f"the database schema is at {current}, this version needs {expected}",
            migration=current,
            expected_migration=expected,
        )
    return Readiness(status="ready", database="ok", migration=current, expected_migration=expected)
