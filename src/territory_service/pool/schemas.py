from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field

from territory_service.api.problems import Problem
from territory_service.customers.schemas import Customer
from territory_service.schemas import (
    InputModel,
    OutputModel,
    PageOut,
    Reason,
    SentWithETag,
    Tag,
    Tier,
    UTCTimestamp,
)

Days = Annotated[int, Field(ge=1, le=3650)]
Limit = Annotated[int, Field(ge=0, le=100_000)]

_INHERITED = " Null: inherited from the territory above (at the top: no limit / off)."


class PoolRulesFields(InputModel):
    holding_limit: Limit | None = Field(
        default=None,
        description="Customers claimed from the pool one owner may hold here at once." + _INHERITED,
    )
    daily_claim_limit: Limit | None = Field(
        default=None, description="Claims one owner may make here per day." + _INHERITED
    )
    cooldown_days: Days | None = Field(
        default=None,
        description="Days before an owner may claim again a customer they released or lost to "
        "reclaim." + _INHERITED,
    )
    reclaim_enabled: bool | None = Field(
        default=None,
        description="Automatic reclaim on or off; switching it off keeps the days and every "
        "customer's clock." + _INHERITED,
    )
    reclaim_after_days: Days | None = Field(
        default=None,
        description="Days without follow-up before an owned customer returns to the pool."
        + _INHERITED,
    )
    reclaim_after_days_by_tier: dict[Tier, Days] | None = Field(
        default=None,
        max_length=100,
        description='Per-tier overrides of `reclaim_after_days`, e.g. {"A": 90}.' + _INHERITED,
    )
    exempt_tags: list[Tag] | None = Field(
        default=None,
        max_length=100,
        description="Customers with one of these tags are never reclaimed." + _INHERITED,
    )
    reminder_days: Annotated[int, Field(ge=0, le=365)] | None = Field(
        default=None,
        description="How many days ahead `GET /v1/pool/due` lists a coming reclaim (default 3)."
        + _INHERITED,
    )


class PoolRulesPut(PoolRulesFields):
    """The territory's own pool rules; fields left out or null are inherited."""


class EffectivePoolRules(OutputModel):
    holding_limit: int | None
    daily_claim_limit: int | None
    cooldown_days: int | None
    reclaim_enabled: bool | None
    reclaim_after_days: int | None
    reclaim_after_days_by_tier: dict[str, int] | None
    exempt_tags: list[str] | None
    reminder_days: int | None


class PoolRulesOut(SentWithETag):
    territory_id: uuid.UUID
    own: EffectivePoolRules = Field(description="What this territory sets itself.")
    effective: EffectivePoolRules = Field(
        description="What is in force here, with inherited values filled in."
    )
    version: int = Field(description="Version of the territory's own rules (0: none set).")


class Claim(InputModel):
    owner_id: uuid.UUID | None = Field(
        default=None,
        description="Who claims; default: the owner the call acts for (`X-Act-As`).",
    )


class BatchClaim(Claim):
    customer_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


class ClaimResult(OutputModel):
    customer_id: uuid.UUID
    status: int = Field(description="200 when claimed, else the problem's status.")
    version: int | None = Field(description="The ownership version the claim wrote.")
    problem: Problem | None = Field(description="Why the claim failed (null when claimed).")


class BatchClaimResult(OutputModel):
    items: list[ClaimResult]


class Release(InputModel):
    reason: Reason = Field(description="Why it goes back to the pool; kept in the history.")
    owner_id: uuid.UUID | None = Field(
        default=None,
        description="Who releases (must be the current owner); default: the owner the call "
        "acts for, else the current owner.",
    )


class Activity(InputModel):
    at: UTCTimestamp | None = Field(
        default=None, description="When the follow-up happened; default: now. Not in the future."
    )


class PoolPage(PageOut):
    items: list[Customer] = Field(
        description="Customers in the pool; `ownership.assigned_at` says since when."
    )


class DueCustomer(OutputModel):
    customer_id: uuid.UUID
    owner_id: uuid.UUID
    territory_id: uuid.UUID
    tier: str | None
    last_activity_at: dt.datetime | None
    held_since: dt.datetime | None
    reclaim_at: dt.datetime = Field(description="When the customer returns to the pool.")


class DuePage(PageOut):
    items: list[DueCustomer]
