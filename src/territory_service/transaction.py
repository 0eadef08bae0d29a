"""One use case, one transaction: how service functions open, commit and translate failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import NoReturn, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from territory_service.errors import ConcurrentUpdate, DatabaseUnavailable

# Deadlock detected, serialization failure: the database chose this transaction to undo.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


@asynccontextmanager
async def transaction(
    session: AsyncSession,
    *,
    resource: str,
    explain_integrity_error: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[None]:
    """Commit on success, roll back on any error, and turn database races into domain errors.

    Uniqueness and references are checked before writing, so an integrity error here means a
    concurrent request won a race. `explain_integrity_error` runs in a fresh transaction after
    the rollback and raises the precise error (e.g. which customer holds the key) when it can.
    """
    try:
        async with session.begin():
            yield
    except StaleDataError as exc:
        raise ConcurrentUpdate(resource) from exc
    except IntegrityError as exc:
        if explain_integrity_error is not None:
            async with session.begin():
                await explain_integrity_error()
        raise ConcurrentUpdate(resource) from exc
    except DBAPIError as exc:  # after IntegrityError, its subclass
        _raise_translated(exc, resource)


def _raise_translated(exc: DBAPIError, resource: str) -> NoReturn:
    if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        raise ConcurrentUpdate(resource) from exc
    if exc.connection_invalidated:
        raise DatabaseUnavailable() from exc
    raise exc


@asynccontextmanager
async def reading(engine: AsyncEngine, *, resource: str) -> AsyncIterator[AsyncConnection]:
    """A connection for a few Core statements outside any use case, for reads every request
    makes (see `coalescing`). On PostgreSQL each statement commits on its own, which saves the
    BEGIN and COMMIT round trips; on SQLite they share one transaction, committed at the end."""
    try:
        if engine.dialect.name == "sqlite":
            async with engine.begin() as connection:
                yield connection
        else:
            async with engine.connect() as connection:
                yield await connection.execution_options(isolation_level="AUTOCOMMIT")
    except DBAPIError as exc:
        _raise_translated(exc, resource)


T = TypeVar("T")

# How often background work runs a transaction that lost a race (a deadlock) before failing.
ATTEMPTS = 3


async def retrying(work: Callable[[], Awaitable[T]], *, attempts: int = ATTEMPTS) -> T:
    """Run `work` (one transaction of a job) again when it loses a race; nothing of a lost
    attempt was committed."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except ConcurrentUpdate:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
