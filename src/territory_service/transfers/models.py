from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, UTCDateTime, Versioned, string_enum
from territory_service.ids import new_id


class TransferStatus(enum.StrEnum):
    PENDING = "pending"
    # Approved and applied in one transaction: every item is either applied or failed.
    APPLIED = "applied"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class TransferItemStatus(enum.StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"


class Transfer(Versioned, Base):
    """A request to move customers to another owner (归属变更), decided by an approver."""

    __tablename__ = "transfers"
    __table_args__ = (Index("ix_transfers_status_created_at", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    status: Mapped[TransferStatus] = mapped_column(
        string_enum(TransferStatus, "transfer_status"), default=TransferStatus.PENDING
    )
    # No foreign key: a transfer is a record and does not keep its owner from being deleted
    # (approving one whose owner is gone fails every item).
    to_owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(String(500))
    item_count: Mapped[int] = mapped_column()
    failed_count: Mapped[int] = mapped_column(default=0)
    requested_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    requested_by_owner_id: Mapped[uuid.UUID | None] = mapped_column()
    decided_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    decided_by_owner_id: Mapped[uuid.UUID | None] = mapped_column()
    decision_note: Mapped[str | None] = mapped_column(String(500))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class TransferItem(Base):
    """One customer of a transfer: where it stood when the transfer was requested, where it
    goes, and what happened when the transfer was decided."""

    __tablename__ = "transfer_items"

    transfer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transfers.id", ondelete="CASCADE"), primary_key=True
    )
    # No foreign key: the item is a record and outlives a deleted customer, like its events.
    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    # The ownership version the request was based on; a different one at approval fails it.
    expected_version: Mapped[int] = mapped_column()
    from_territory_id: Mapped[uuid.UUID] = mapped_column()
    from_owner_id: Mapped[uuid.UUID | None] = mapped_column()
    to_territory_id: Mapped[uuid.UUID] = mapped_column(index=True)
    status: Mapped[TransferItemStatus] = mapped_column(
        string_enum(TransferItemStatus, "transfer_item_status"),
        default=TransferItemStatus.PENDING,
    )
    failure: Mapped[str | None] = mapped_column(String(500))
