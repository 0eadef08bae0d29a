import datetime as dt
import uuid
from typing import Any

from pydantic import Field

from territory_service.conflicts.models import ConflictStatus
from territory_service.rules.resolution import ConflictKind
from territory_service.schemas import InputModel, LongText, PageOut, ResourceOut


class ConflictClose(InputModel):
    note: LongText = Field(description="Why the conflict is closed; kept with it.")


class ConflictResolve(ConflictClose):
    # The actions a resolution may carry (assign to an owner, merge customers) join here.
    pass


class ConflictDismiss(ConflictClose):
    pass


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
        description="The first customers (at most 100) seen with this cause."
    )
    customer_count: int = Field(description="Customers seen with this cause, over all detections.")
    rule_ids: list[uuid.UUID]
    owner_ids: list[uuid.UUID]
    details: dict[str, Any]
    ruleset_version: int | None = Field(description="The rule set version that first raised it.")
    occurrences: int = Field(description="How many times it was detected.")
    last_seen_at: dt.datetime
    resolution_note: str | None
    closed_at: dt.datetime | None
    closed_by_key_id: uuid.UUID | None = Field(description="The API key that closed it.")


class ConflictPage(PageOut):
    items: list[Conflict]
