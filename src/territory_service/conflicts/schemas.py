import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import Field

from territory_service.conflicts.models import ConflictStatus
from territory_service.engine.resolution import ConflictKind
from territory_service.schemas import (
    InputModel,
    LongText,
    OutputModel,
    PageOut,
    ResourceOut,
    by_case,
)


class ConflictClose(InputModel):
    note: LongText = Field(description="Why the conflict is closed; kept with it.")


class AssignAction(InputModel):
    """Assign one of the conflict's customers by hand and lock it there, as
    `PUT /v1/customers/{id}/ownership` does (needs `transfers:approve`)."""

    type: Literal["assign"]
    customer_id: uuid.UUID = Field(description="One of the customers the conflict lists.")
    owner_id: uuid.UUID | None = Field(
        description="An active member of the territory; null: the territory's pool."
    )
    territory_id: uuid.UUID | None = Field(
        default=None, description="Default: the customer's current territory."
    )
    ownership_version: int | None = Field(
        default=None,
        ge=1,
        description="The ownership version the decision is based on; 412 when it has moved on.",
    )


class MergeAction(InputModel):
    """Merge two of the conflict's customers, as `POST /v1/customers/{id}/merge` does
    (needs `customers:write`)."""

    type: Literal["merge"]
    survivor_id: uuid.UUID = Field(description="The customer that stays, with its ownership.")
    merged_id: uuid.UUID = Field(description="The customer folded into the survivor.")


ConflictAction = Annotated[AssignAction | MergeAction, Field(discriminator="type")]


class ConflictResolve(ConflictClose):
    action: ConflictAction | None = Field(
        default=None,
        description="Carried out in the same transaction: the conflict closes only if it "
        "succeeds, and its errors answer as they would on their own.",
    )


class ConflictDismiss(ConflictClose):
    pass


class ConflictDetails(OutputModel):
    """What the detection saw; which fields are set depends on the conflict's `kind`."""

    priority: int | None = by_case("`rule_tie`: the tied priority.")
    tie_policy: str | None = by_case("`rule_tie`: the rule set's tie policy then.")
    rules_territory_id: uuid.UUID | None = by_case(
        "`locked_drift`: where the rules would put the customer."
    )
    group_root_id: uuid.UUID | None = by_case(
        "`group_split`: the group company the subsidiary follows."
    )
    winner_owner_id: uuid.UUID | None = by_case("`claim_race`: the owner whose claim won.")
    reasons: list[str] | None = by_case(
        "`duplicate_customer`: why the customers look like one company "
        "(`registration_id`, `normalized_name`)."
    )
    normalized_name: str | None = by_case(
        "`duplicate_customer`: the name as duplicates compare it."
    )
    registration_key: str | None = by_case(
        "`duplicate_customer`: the shared registration id, folded."
    )


class Conflict(ResourceOut):
    id: uuid.UUID
    kind: ConflictKind
    status: ConflictStatus
    cause: str = Field(
        description="What identifies the conflict: detecting the same cause again updates the "
        "open conflict instead of adding one."
    )
    territory_id: uuid.UUID | None
    customer_ids: list[uuid.UUID] = Field(
        description="A sample: the first customers (at most 100) seen with this cause. "
        "`GET /v1/conflicts?customer_id=` finds the conflict through any of its customers."
    )
    customer_count: int = Field(
        description="Distinct customers seen with this cause, over all detections."
    )
    rule_ids: list[uuid.UUID]
    owner_ids: list[uuid.UUID]
    details: ConflictDetails
    ruleset_version: int | None = Field(description="The rule set version that first raised it.")
    occurrences: int = Field(description="How many times it was detected.")
    last_seen_at: dt.datetime
    resolution_note: str | None
    closed_at: dt.datetime | None
    closed_by_key_id: uuid.UUID | None = Field(description="The API key that closed it.")
    closed_by_owner_id: uuid.UUID | None = Field(
        description="The owner the key acted for when closing it (`X-Act-As`)."
    )
    resolution_action: ConflictAction | None = Field(
        description="The action the resolution carried out."
    )


class ConflictPage(PageOut):
    items: list[Conflict]
