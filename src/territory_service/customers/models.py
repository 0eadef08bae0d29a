from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from territory_service.customers.names import normalize_name, registration_key
from territory_service.db import Base, JSONDocument, UTCDateTime, Versioned, utcnow
from territory_service.ids import new_id

if TYPE_CHECKING:
    from territory_service.ownership.models import Ownership


class Customer(Versioned, Base):
    """A company in the unified pool, with the facts that assignment rules read."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("potential_score BETWEEN 0 AND 100", name="potential_score_range"),
        CheckConstraint("employees >= 0", name="employees_non_negative"),
        CheckConstraint("annual_revenue >= 0", name="annual_revenue_non_negative"),
        Index("ix_customers_tags", "tags", postgresql_using="gin"),
        Index("ix_customers_updated_at", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    # The name with legal suffixes, punctuation, width and spacing folded: how duplicates
    # (撞单) are found. Kept by the service whenever the name is written.
    normalized_name: Mapped[str] = mapped_column(String(200), index=True)
    country: Mapped[str | None] = mapped_column(String(64))
    province: Mapped[str | None] = mapped_column(String(64), index=True)
    city: Mapped[str | None] = mapped_column(String(64), index=True)
    district: Mapped[str | None] = mapped_column(String(64))
    industry: Mapped[str | None] = mapped_column(String(64), index=True)
    employees: Mapped[int | None] = mapped_column()
    annual_revenue: Mapped[float | None] = mapped_column()
    tier: Mapped[str | None] = mapped_column(String(32), index=True)
    potential_score: Mapped[int | None] = mapped_column(SmallInteger)
    tags: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    registration_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The registration id with case and hyphens folded: two customers sharing it are one
    # company written twice (the unique `registration_id` cannot see that). Kept like the name.
    registration_key: Mapped[str | None] = mapped_column(String(64), index=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True
    )
    last_activity_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    ownership: Mapped[Ownership | None] = relationship(lazy="raise", viewonly=True)

    @validates("name")
    def _fold_name(self, _key: str, name: str) -> str:
        self.normalized_name = normalize_name(name)
        return name

    @validates("registration_id")
    def _fold_registration_id(self, _key: str, registration_id: str | None) -> str | None:
        self.registration_key = registration_key(registration_id)
        return registration_id


class CustomerAlias(Base):
    """An external id of a customer that was merged into another: it resolves to the survivor."""

    __tablename__ = "customer_aliases"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    # The customer that carried this external id before the merge (no foreign key: it is gone).
    merged_customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    merged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
