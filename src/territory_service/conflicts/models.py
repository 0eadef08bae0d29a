from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, JSONDocument, UTCDateTime, Versioned, string_enum
from territory_service.engine.resolution import ConflictKind
from territory_service.ids import new_id


class ConflictStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


class Conflict(Versioned, Base):
    """A situation that needs a person, logged once per cause: a repeat updates the open row."""

    __tablename__ = "conflicts"
    __table_args__ = (
        Index(
            "uq_conflicts_open_cause",
            "cause",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_conflicts_kind_status", "kind", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[ConflictKind] = mapped_column(string_enum(ConflictKind, "conflict_kind", 24))
    status: Mapped[ConflictStatus] = mapped_column(
        string_enum(ConflictStatus, "conflict_status"), default=ConflictStatus.OPEN
    )
    cause: Mapped[str] = mapped_column(String(400))
    territory_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("territories.id", ondelete="SET NULL"), index=True
    )
    # A sample for display: the first customers seen with this cause (at most 100), and how
    # many distinct ones there were. Every one of them is in `conflict_customers`.
    customer_ids: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    customer_count: Mapped[int] = mapped_column(default=0)
    rule_ids: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    owner_ids: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    ruleset_version: Mapped[int | None] = mapped_column()
    occurrences: Mapped[int] = mapped_column(default=1)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolution_note: Mapped[str | None] = mapped_column(String(2000))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Who closed it: the API key, and the owner it acted for (X-Act-As).
    closed_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    closed_by_owner_id: Mapped[uuid.UUID | None] = mapped_column()
    # The action the resolution carried out (an assignment, a merge), as it was asked for.
    resolution_action: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class ConflictCustomer(Base):
    """A customer a conflict names: every one, however many, so that a customer finds each
    conflict about it (`conflicts.customer_ids` keeps only a sample)."""

    __tablename__ = "conflict_customers"

    conflict_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conflicts.id", ondelete="CASCADE"), primary_key=True
    )
    # No foreign key: a conflict keeps naming a customer that was merged away or deleted.
    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
