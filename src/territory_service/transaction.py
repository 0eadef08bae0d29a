"""One use case, one transaction: how service functions open, commit and translate failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import NoReturn, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from territory_service.errors import ConcurrentUpdate, DatabaseUnavailable, ServiceError

# Deadlock detected, serialization failure: the database chose this transaction to undo.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})

# SQLSTATEs that say the database went away or will not take a connection now, and will again:
# class 08, "connection exception" (08001 could not connect, 08003 no connection, 08006 it
# failed, ...) but for 08P01, a protocol violation, which is a message the client got wrong (a
# bug); the shutdown (57P01), crash (57P02) and start-up (57P03) of a restart; a session the
# server ended (57P05); no connection slot free (53300).
CONNECTION_EXCEPTION_CLASS = "08"
PROTOCOL_VIOLATION = "08P01"
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57P05", "53300"})


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means that the database could not be reached or went away (503, retry),
    rather than that the request or the code is wrong.

    Every step can meet it: opening a connection, a statement, the commit. It is one of: a
    connection SQLAlchemy found dead (`connection_invalidated`); an error whose SQLSTATE says
    so, wrapped by SQLAlchemy or raised by the driver itself (raw connections, connection
    set-up; `db.create_engine` gives a server that cannot be reached 08001); no pooled
    connection free in time, which a retry gets once the pool drains.
    """
    for error in _causes(exc):
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, PoolTimeout):
            return True
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and _means_unavailable(sqlstate):
            return True
    return False


def _means_unavailable(sqlstate: str) -> bool:
    if sqlstate.startswith(CONNECTION_EXCEPTION_CLASS):
        return sqlstate != PROTOCOL_VIOLATION
    return sqlstate in UNAVAILABLE_SQLSTATES


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver's error under a SQLAlchemy one, and what each was raised from. Not
    what was being handled when it was raised (`__context__`): an error made while handling a
    lost connection is still an error of its own."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        if isinstance(error, DBAPIError) and isinstance(error.orig, BaseException):
            pending.append(error.orig)
        if error.__cause__ is not None:
            pending.append(error.__cause__)


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
    A database that cannot be reached or goes away, at whichever step, is `DatabaseUnavailable`.
    """
    try:
        async with session.begin():
            yield
    except StaleDataError as exc:
        raise ConcurrentUpdate(resource) from exc
    except IntegrityError as exc:
        if explain_integrity_error is not None:
            try:
                async with session.begin():
                    await explain_integrity_error()
            except Exception as failure:
                _raise_translated(failure, resource)
        raise ConcurrentUpdate(resource) from exc
    except Exception as exc:  # the body's own errors come back out unchanged
        _raise_translated(exc, resource)


def _raise_translated(exc: Exception, resource: str) -> NoReturn:
    if isinstance(exc, ServiceError):
        raise exc  # already the answer (an inner `reading`'s DatabaseUnavailable among them)
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        raise ConcurrentUpdate(resource) from exc
    if database_unavailable(exc):
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
    except Exception as exc:
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
