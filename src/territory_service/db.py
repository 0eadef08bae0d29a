"""Declarative base, column types shared by every table, and the engine and session factories."""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Enum,
    MetaData,
    Select,
    String,
    Table,
    event,
    exists,
    func,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

from territory_service.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on every backend.

    SQLite has no timezone type, so values are stored as naive UTC there and made aware again on
    the way out; PostgreSQL uses `timestamptz`. Naive input is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: dt.datetime | None,
        dialect: Dialect,  # noqa: ARG002 (part of the TypeDecorator interface)
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def string_enum(enum_class: type[enum.StrEnum], name: str, length: int = 16) -> Enum:
    """An enum stored as its string values in VARCHAR with a CHECK constraint (no native type,
    so adding a value is a plain migration on both backends)."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


# JSONB on PostgreSQL (indexable, containment operators), JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def json_array_contains(column: Any, value: str, dialect: str) -> ColumnElement[bool]:
    """`value` is an element of the JSON array in `column` (JSONB `@>` and its GIN index on
    PostgreSQL, `json_each` on SQLite)."""
    if dialect == "postgresql":
        return type_coerce(column, JSONB).contains([value])
    elements = func.json_each(column).table_valued("value")
    return exists(select(text("1")).select_from(elements).where(elements.c.value == value))


def string_array(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """A JSON array of strings, read as a list (an empty one may arrive as None). On PostgreSQL
    it arrives as `text[]`, which the driver decodes natively (JSON would go through
    `json.loads` row by row), and an empty one as NULL, which costs neither side anything."""
    if dialect != "postgresql":
        return column
    name = column.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    elements: ColumnElement[Any] = literal_column(
        f"CASE WHEN {name} = '[]'::jsonb THEN NULL "
        f"ELSE ARRAY(SELECT jsonb_array_elements_text({name})) END"
    )
    return type_coerce(elements, postgresql.ARRAY(String()))


async def fetch_rows(
    connection: AsyncConnection, statement: Select[Any]
) -> Sequence[Sequence[Any]]:
    """A query's rows as plain sequences. On asyncpg they come straight from the driver, which
    decodes in C; the result layer would cost more than the query for bulk reads."""
    if connection.dialect.driver != "asyncpg":
        return cast(Sequence[Sequence[Any]], (await connection.execute(statement)).all())
    compiled = statement.compile(dialect=connection.dialect)
    parameters = [compiled.params[name] for name in compiled.positiontup or ()]
    raw = await connection.get_raw_connection()
    rows: Sequence[Sequence[Any]] = await raw.driver_connection.fetch(str(compiled), *parameters)  # type: ignore[union-attr]
    return rows


def dialect_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the dialect's `ON CONFLICT` clauses (both backends speak the same upsert)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for {dialect}")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _json_serializer(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# A pooled connection idle longer than this is tested before use (see `_ping_when_idle`).
PING_AFTER_IDLE_SECONDS = 1.0


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        return _create_sqlite_engine(settings)
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        echo=settings.log_sql,
        json_serializer=_json_serializer,
        connect_args={
            "server_settings": {
                "application_name": "territory-service",
                "statement_timeout": str(settings.db_statement_timeout_ms),
                # A rule-set's bulk statements are short; JIT compilation only slows them.
                "jit": "off",
            }
        },
    )
    _report_unreachable_server(engine)
    _ping_when_idle(engine)
    return engine


# SQLSTATE "sqlclient_unable_to_establish_sqlconnection": the client could not connect.
CANNOT_CONNECT = "08001"


def _report_unreachable_server(engine: AsyncEngine) -> None:
    """Make a server that cannot be reached fail as a driver error, as every other failure of
    the database does.

    asyncpg lets the socket's own error out of `connect` (`ConnectionRefusedError` while the
    server is down, `TimeoutError`, `ConnectionResetError`, ...), and SQLAlchemy wraps only
    driver errors, so it would reach the request as a bare `OSError`, indistinguishable from
    one a bug made. As the driver's `OperationalError` with SQLSTATE 08001, SQLAlchemy wraps it
    like the server's own refusals (57P03 "the database system is starting up", 53300 "too
    many connections"), and `transaction.database_unavailable` knows them all by their code.
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as exc:  # TimeoutError and ConnectionError are OSErrors
            message = f"cannot reach the database: {exc!r}"
            error: Any = dialect.loaded_dbapi.OperationalError(message)
            error.sqlstate = error.pgcode = CANNOT_CONNECT  # where the driver's errors carry it
            raise error from exc


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Test a pooled connection before use only when it has been idle for a while.

    `pool_pre_ping` tests every checkout, which costs three round trips (BEGIN, a ping,
    ROLLBACK) on every use of a busy pool. A connection used moments ago is alive unless the
    server went away since; then the statement that finds out fails (503, nothing committed)
    and SQLAlchemy invalidates the whole pool, so the next checkouts connect afresh.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool drops this connection and checks out another (a fresh one if needed).
            raise DisconnectionError() from exc


def _create_sqlite_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        echo=settings.log_sql,
        json_serializer=_json_serializer,
        connect_args={"timeout": settings.sqlite_busy_timeout_seconds},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that SQLAlchemy's BEGIN is
        # the only one, and make it BEGIN IMMEDIATE: a transaction holds the write lock from its
        # first statement, so read-then-write use cases never deadlock on a lock upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class Versioned:
    """Mixin: the optimistic-concurrency `version` and the timestamps every resource carries.

    `version` is the mapper's version counter, so every ORM UPDATE says `... WHERE version = :seen`
    and two writers that read the same row cannot both win.
    """

    version: Mapped[int] = mapped_column(nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]
