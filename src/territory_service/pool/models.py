from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, JSONDocument, Versioned


class PoolRules(Versioned, Base):
    """A territory's public-pool rules (公海规则). Every field left NULL is inherited from the
    nearest territory above that sets it; at the top, NULL means "no limit" or "off"."""

    __tablename__ = "pool_rules"

    territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territories.id", ondelete="CASCADE"), primary_key=True
    )
    # Customers claimed from the pool one owner may hold in the territory at once.
    holding_limit: Mapped[int | None] = mapped_column()
    # Claims one owner may make in the territory per day.
    daily_claim_limit: Mapped[int | None] = mapped_column()
    # Days before an owner may claim again a customer they released or lost to reclaim.
    cooldown_days: Mapped[int | None] = mapped_column()
    # Automatic reclaim: on/off separately from its days, so switching it off keeps them.
    reclaim_enabled: Mapped[bool | None] = mapped_column()
    # Days without follow-up before an owned customer returns to the pool; per tier overrides.
    reclaim_after_days: Mapped[int | None] = mapped_column()
    reclaim_after_days_by_tier: Mapped[dict[str, int] | None] = mapped_column(JSONDocument)
    # Customers with one of these tags are never reclaimed (e.g. an open deal).
    exempt_tags: Mapped[list[str] | None] = mapped_column(JSONDocument)
    # How many days ahead `GET /v1/pool/due` warns before a reclaim.
    reminder_days: Mapped[int | None] = mapped_column()
