from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, JSONDocument, UTCDateTime, Versioned, string_enum
from territory_service.engine.ruleset import TiePolicy
from territory_service.ids import new_id


class RuleSetState(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # to become active at `scheduled_for` (an activation job waits)
    ACTIVE = "active"
    ARCHIVED = "archived"


class RuleSet(Versioned, Base):
    """A versioned set of assignment rules; exactly one is active."""

    __tablename__ = "rulesets"
    __table_args__ = (
        # At most one active rule set, whatever the concurrency.
        Index(
            "uq_rulesets_one_active",
            "state",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The rule-set version customers' ownership refers to: 1, 2, 3, ... in creation order.
    number: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    state: Mapped[RuleSetState] = mapped_column(
        string_enum(RuleSetState, "ruleset_state"), default=RuleSetState.DRAFT
    )
    default_territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territories.id", ondelete="RESTRICT")
    )
    tie_policy: Mapped[TiePolicy] = mapped_column(
        string_enum(TiePolicy, "tie_policy"), default=TiePolicy.FIRST_CREATED
    )
    copied_from_id: Mapped[uuid.UUID | None] = mapped_column()
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class RuleRow(Versioned, Base):
    """One rule of a rule set. Its condition is stored as the API's JSON form."""

    __tablename__ = "rules"
    __table_args__ = (UniqueConstraint("ruleset_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    ruleset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rulesets.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column()
    condition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territories.id", ondelete="RESTRICT"), index=True
    )
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("owners.id", ondelete="RESTRICT"), index=True
    )
    enabled: Mapped[bool] = mapped_column(default=True)
    # Creation order within the rule set: the earliest wins a first_created tie.
    position: Mapped[int] = mapped_column()


class SimulationMove(Base):
    """A customer a simulated rule set would move: one row per customer and simulation job."""

    __tablename__ = "simulation_moves"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    from_territory_id: Mapped[uuid.UUID | None] = mapped_column()
    from_owner_id: Mapped[uuid.UUID | None] = mapped_column()
    territory_id: Mapped[uuid.UUID] = mapped_column()
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    rule_id: Mapped[uuid.UUID | None] = mapped_column()
