from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field, field_validator

from territory_service.schemas import (
    InputModel,
    OutputModel,
    PageOut,
    Reason,
    ResourceOut,
    examples,
)
from territory_service.transfers.models import TransferItemStatus, TransferStatus

MAX_CUSTOMERS = 1000


class TransferCreate(InputModel):
    """Move customers to another owner once an approver agrees (归属变更)."""

    model_config = examples(
        {
            "customer_ids": ["0191d5a8-6c90-7a12-a3d5-9f1e7b2c8d01"],
            "to_owner_id": "0191d5a8-5b21-7d44-8c0f-6e2b1a9d4c77",
            "reason": "区域调整",
        }
    )

    customer_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=MAX_CUSTOMERS, description="1 to 1,000 distinct customers."
    )
    to_owner_id: uuid.UUID = Field(description="An active owner.")
    to_territory_id: uuid.UUID | None = Field(
        default=None,
        description="Where the customers go. Default: each stays in its territory, which the "
        "target owner must then be a member of.",
    )
    reason: Reason = Field(description="Why; kept with the transfer and in each history.")

    @field_validator("customer_ids")
    @classmethod
    def _distinct(cls, customer_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(customer_ids)) != len(customer_ids):
            raise ValueError("customer ids must be distinct")
        return customer_ids


class TransferDecision(InputModel):
    note: Reason | None = Field(default=None, description="Kept with the decision.")


class TransferItem(OutputModel):
    customer_id: uuid.UUID
    expected_version: int = Field(
        description="The ownership version when the transfer was requested; if the ownership "
        "has changed since, approving fails this item instead of moving the customer."
    )
    from_territory_id: uuid.UUID
    from_owner_id: uuid.UUID | None
    to_territory_id: uuid.UUID
    status: TransferItemStatus
    failure: str | None = Field(description="Why the item was not applied.")


class TransferSummary(ResourceOut):
    id: uuid.UUID
    status: TransferStatus
    to_owner_id: uuid.UUID
    reason: str
    item_count: int
    failed_count: int = Field(description="Items approval could not apply.")
    requested_by_key_id: uuid.UUID | None
    requested_by_owner_id: uuid.UUID | None = Field(description="The owner it was requested for.")
    decided_by_key_id: uuid.UUID | None
    decided_by_owner_id: uuid.UUID | None = Field(description="The owner who decided it.")
    decision_note: str | None
    decided_at: dt.datetime | None


class Transfer(TransferSummary):
    items: list[TransferItem]


class TransferPage(PageOut):
    items: list[TransferSummary]
