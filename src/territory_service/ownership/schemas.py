from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field, model_validator

from territory_service.customers.schemas import CustomerOwnership
from territory_service.ownership.models import OwnershipSource
from territory_service.schemas import (
    InputModel,
    OutputModel,
    PageOut,
    Reason,
    SentWithETag,
    by_case,
    examples,
)


class OwnershipOut(CustomerOwnership, SentWithETag):
    customer_id: uuid.UUID
    rule_id: uuid.UUID | None
    ruleset_version: int | None


# A rule across two fields that JSON Schema could say only with an `anyOf` of required sets,
# which client generators turn into one class per branch that drops the other fields.
NEEDS_A_TARGET = "give owner_id, territory_id, or both"


class OwnershipAssign(InputModel):
    """Who owns the customer from now on; the ownership is locked (rules no longer move it)."""

    model_config = examples(
        {"owner_id": "0191d5a8-5b21-7d44-8c0f-6e2b1a9d4c77", "reason": "客户要求更换对接人"},
        {
            "territory_id": "0191d5a8-4f6e-7c3a-9b1e-2a7f5c3d9e10",
            "owner_id": None,
            "reason": "退回华东公海",
        },
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
            raise ValueError(NEEDS_A_TARGET)
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


class TraceData(OutputModel):
    """The ids a step names; which are set depends on the step."""

    rule_id: uuid.UUID | None = by_case("`rules`: the winning rule.")
    tied: list[uuid.UUID] | None = by_case("`rules`: the other rules tied with the winner.")
    owner_id: uuid.UUID | None = by_case("`strategy`: the owner chosen.")
    group_root_id: uuid.UUID | None = by_case("`group`: the group company followed.")


class TraceStep(OutputModel):
    step: str = Field(
        description="lock, group, rules, tie, no_match, named_owner, stability, strategy or pool"
    )
    detail: str
    data: TraceData


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
