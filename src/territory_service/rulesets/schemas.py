import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import Field

from territory_service.engine.ruleset import TiePolicy
from territory_service.rulesets.condition_schemas import ConditionIn
from territory_service.rulesets.models import RuleSetState
from territory_service.schemas import (
    InputModel,
    Name,
    NotNull,
    OptionalLongText,
    OutputModel,
    PageOut,
    ResourceOut,
    examples,
)

Priority = Annotated[int, Field(ge=-1_000_000, le=1_000_000, description="Lower wins.")]


class RuleSetCreate(InputModel):
    model_config = examples(
        {"name": "2027 划分", "default_territory_id": "0191d5a8-4f6e-7c3a-9b1e-2a7f5c3d9e10"}
    )

    name: Name
    description: OptionalLongText = None
    default_territory_id: uuid.UUID = Field(
        description="Where customers no rule matches wait (in the territory's pool)."
    )
    tie_policy: TiePolicy = TiePolicy.FIRST_CREATED
    copy_active: bool = Field(
        default=False, description="Start from a copy of the active rule set's rules."
    )


class RuleSetUpdate(InputModel):
    name: NotNull[Name] = None
    description: OptionalLongText = None
    default_territory_id: NotNull[uuid.UUID] = None
    tie_policy: NotNull[TiePolicy] = None


class RuleSet(ResourceOut):
    id: uuid.UUID
    number: int = Field(description="The rule-set version ownership records refer to.")
    name: str
    description: str | None
    state: RuleSetState
    default_territory_id: uuid.UUID
    tie_policy: TiePolicy
    copied_from_id: uuid.UUID | None
    activated_at: dt.datetime | None
    archived_at: dt.datetime | None
    scheduled_for: dt.datetime | None = Field(
        description="`scheduled`: when it becomes active (its activation job starts then)."
    )


class RuleSetPage(PageOut):
    items: list[RuleSet]


class RuleCreate(InputModel):
    model_config = examples(
        {
            "name": "华东制造业",
            "priority": 10,
            "condition": {
                "any_of": [
                    {
                        "all_of": [
                            {"field": "province", "op": "in", "value": ["上海", "江苏", "浙江"]},
                            {"field": "industry", "op": "eq", "value": "manufacturing"},
                        ]
                    }
                ]
            },
            "territory_id": "0191d5a8-4f6e-7c3a-9b1e-2a7f5c3d9e10",
        }
    )

    name: Name
    priority: Priority
    condition: ConditionIn
    territory_id: uuid.UUID
    owner_id: uuid.UUID | None = Field(default=None, description="A named account's owner.")
    enabled: bool = True


class RuleUpdate(InputModel):
    name: NotNull[Name] = None
    priority: NotNull[Priority] = None
    condition: NotNull[ConditionIn] = None
    territory_id: NotNull[uuid.UUID] = None
    owner_id: uuid.UUID | None = None
    enabled: NotNull[bool] = None


class Rule(ResourceOut):
    id: uuid.UUID
    ruleset_id: uuid.UUID
    name: str
    priority: int
    condition: ConditionIn = Field(description="As it was given: the same shape as on input.")
    territory_id: uuid.UUID
    owner_id: uuid.UUID | None
    enabled: bool
    position: int = Field(description="Creation order; the earliest wins a first_created tie.")


class RulePage(PageOut):
    items: list[Rule]


class ValidationIssue(OutputModel):
    severity: str = Field(description="`error` blocks activation; `warning` does not.")
    code: str
    message: str
    rule_ids: list[uuid.UUID] = Field(default_factory=list)
    example: dict[str, Any] | None = Field(
        default=None, description="Facts of a customer that shows the issue."
    )


class ValidationReport(OutputModel):
    valid: bool
    issues: list[ValidationIssue]


class SimulationMove(OutputModel):
    """A customer the simulated rule set would move."""

    customer_id: uuid.UUID
    from_territory_id: uuid.UUID | None = Field(description="Null: the customer has no owner yet.")
    from_owner_id: uuid.UUID | None
    territory_id: uuid.UUID
    owner_id: uuid.UUID | None = Field(description="Null: the territory's pool.")
    rule_id: uuid.UUID | None = Field(description="The rule that decides; null: no rule matched.")


class SimulationMovePage(PageOut):
    items: list[SimulationMove]
