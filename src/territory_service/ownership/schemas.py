from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from territory_service.customers.schemas import CustomerOwnership
from territory_service.ownership.models import OwnershipSource
from territory_service.schemas import InputModel, OutputModel, PageOut, Reason, SentWithETag


class OwnershipOut(CustomerOwnership, SentWithETag):
    customer_id: uuid.UUID
    rule_id: uuid.UUID | None
    ruleset_version: int | None


class OwnershipAssign(InputModel):
    """Who owns the customer from now on; the ownership is locked (rules no longer move it)."""

    # `_names_a_target`, as the schema says it: at least one of the two is a UUID.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("territory_id", "owner_id")
            ]
        }
    )

    territory_id: uuid.UUID | None = Field(
        default=None, description="Default: the current territory."
    )
    owner_id: uuid.UUID | None = Field(
        default=None,
        description="An active member of the territory; null: the territory's pool.",
    )
    reason: Reason = Field(description="Why; kept in the history.")

    @model_validator(mode="after")
    def _names_a_target(self) -> OwnershipAssign:
        if self.territory_id is None and self.owner_id is None:
            raise ValueError("give owner_id, territory_id, or both")
        return self


class OwnershipUnlock(InputModel):
    reason: Reason | None = Field(default=None, description="Why; kept in the history.")


class OwnershipEventOut(OutputModel):
    id: int = Field(description="Increases monotonically; the change feed's cursor.")
    customer_id: uuid.UUID
    version: int = Field(description="The ownership version this event produced.")
    from_territory_id: uuid.UUID | None
    from_owner_id: uuid.UUID | None
    territory_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    source: OwnershipSource
    rule_id: uuid.UUID | None
    ruleset_version: int | None
    locked: bool
    reason: str | None
    actor_key_id: uuid.UUID | None
    acting_owner_id: uuid.UUID | None
    request_id: str | None
    created_at: dt.datetime


class OwnershipEventPage(PageOut):
    items: list[OwnershipEventOut]


class RuleMatch(OutputModel):
    rule_id: uuid.UUID
    name: str
    priority: int
    territory_id: uuid.UUID
    owner_id: uuid.UUID | None


class TraceStep(OutputModel):
    step: str = Field(
        description="lock, group, rules, tie, no_match, named_owner, stability, strategy or pool"
    )
    detail: str
    data: dict[str, Any]


class Decision(OutputModel):
    """Where the active rules put the customer, and why."""

    ruleset_version: int
    territory_id: uuid.UUID
    owner_id: uuid.UUID | None
    source: str = Field(description="`rule`, `group`, or `kept` when a lock holds.")
    rule_id: uuid.UUID | None
    matches: list[RuleMatch] = Field(description="Every enabled rule that matches, best first.")
    trace: list[TraceStep]
    conflicts: list[str] = Field(description="Kinds of conflict this decision raises.")


class Explanation(OutputModel):
    customer_id: uuid.UUID
    current: OwnershipOut | None
    decision: Decision
