"""Pool rules in force for a territory: its own, with every unset field inherited from the
nearest territory above that sets it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.pool.models import PoolRules
from territory_service.territories.models import Territory

FIELDS = (
    "holding_limit", "daily_claim_limit", "cooldown_days", "reclaim_enabled",
    "reclaim_after_days", "reclaim_after_days_by_tier", "exempt_tags", "reminder_days",
)  # fmt: skip

DEFAULT_REMINDER_DAYS = 3


@dataclass(frozen=True)
class EffectiveRules:
    holding_limit: int | None = None
    daily_claim_limit: int | None = None
    cooldown_days: int | None = None
    reclaim_enabled: bool | None = None
    reclaim_after_days: int | None = None
    reclaim_after_days_by_tier: dict[str, int] | None = None
    exempt_tags: list[str] | None = None
    reminder_days: int | None = None

    def reclaim_days(self, tier: str | None) -> int | None:
        """Days without follow-up before a customer of this tier is reclaimed; None: never."""
        if not self.reclaim_enabled:
            return None
        by_tier = self.reclaim_after_days_by_tier or {}
        if tier is not None and tier in by_tier:
            return by_tier[tier]
        return self.reclaim_after_days

    @property
    def reclaims(self) -> bool:
        return bool(self.reclaim_enabled) and bool(
            self.reclaim_after_days or self.reclaim_after_days_by_tier
        )

    @property
    def reminder(self) -> dt.timedelta:
        days = DEFAULT_REMINDER_DAYS if self.reminder_days is None else self.reminder_days
        return dt.timedelta(days=days)

    def is_exempt(self, tags: Iterable[str]) -> bool:
        return not set(self.exempt_tags or ()).isdisjoint(tags)


async def effective_rules(
    session: AsyncSession, territory_ids: Iterable[uuid.UUID] | None = None
) -> dict[uuid.UUID, EffectiveRules]:
    """The rules in force for these territories (all territories when None)."""
    rows = await session.execute(select(Territory.id, Territory.parent_id))
    parents = {territory_id: parent_id for territory_id, parent_id in rows}  # noqa: C416
    own = {r.territory_id: r for r in (await session.execute(select(PoolRules))).scalars()}
    wanted = parents.keys() if territory_ids is None else set(territory_ids) & parents.keys()
    result = {}
    for territory_id in wanted:
        values: dict[str, Any] = {}
        node: uuid.UUID | None = territory_id
        seen: set[uuid.UUID] = set()
        while node is not None and node not in seen and len(values) < len(FIELDS):
            seen.add(node)
            rules = own.get(node)
            if rules is not None:
                for name in FIELDS:
                    value = getattr(rules, name)
                    if name not in values and value is not None:
                        values[name] = value
            node = parents.get(node)
        result[territory_id] = EffectiveRules(**values)
    return result
