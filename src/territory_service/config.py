"""Settings read from the environment (and an optional `.env` file)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./territory.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///FILE or postgresql+asyncpg://…",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(
        default=30_000, ge=0, description="PostgreSQL statement_timeout for request sessions."
    )
    sqlite_busy_timeout_seconds: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Larger request bodies answer 413."
    )
    preview_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long `POST /v1/resolve` reuses territories, members and their load "
        "(0: read them on every request). Stored customers are always resolved fresh.",
    )
    idempotency_ttl_hours: int = Field(
        default=24,
        ge=24,
        description="How long an Idempotency-Key and its answer are kept (at least 24 hours).",
    )
    idempotency_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a request holds its Idempotency-Key without renewing the claim; "
        "a running request renews it, so only a key whose process died lapses.",
    )
    pool_reclaim_interval_seconds: float = Field(
        default=3600,
        ge=0,
        description="How often the service runs the pool's automatic reclaim (0: never; one "
        "replica at a time runs it, through a lease in the database).",
    )
    job_lease_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a worker's lease on a piece of a job lasts unless renewed (every "
        "third of it while the piece runs): when its replica dies, another takes the piece "
        "over this long after the last renewal.",
    )
    job_workers: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Workers per process taking pieces of jobs (one on SQLite).",
    )
    job_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often an idle worker looks for jobs queued on other replicas.",
    )
    activation_piece_changes: int = Field(
        default=5000,
        ge=1,
        description="Most ownership changes in one piece of a re-division (one transaction).",
    )
    activation_piece_customers: int = Field(
        default=50_000,
        ge=1,
        description="Most customers in one piece of a re-division when few of them change.",
    )
    pool_day_utc_offset_hours: float = Field(
        default=8,
        ge=-12,
        le=14,
        description="The pool's time zone as hours from UTC: where a day begins for daily claim "
        "limits (default UTC+8, China Standard Time).",
    )
    demo_key_file: Path = Field(
        default=Path("demo-admin-key.txt"),
        description="Where `territory-service demo` keeps the demo admin key.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: LogLevel = "INFO"
    log_sql: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()


def migrations_dir() -> Path:
    """Where the Alembic scripts live: inside the wheel when installed, else the source tree."""
    packaged = Path(__file__).parent / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"
