import datetime as dt
import uuid

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, JSONDocument, UTCDateTime, utcnow


class AuditEntry(Base):
    """Append-only record of every write and every refused authentication or authorisation."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_key_id_id", "key_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    key_id: Mapped[uuid.UUID | None] = mapped_column()
    acting_owner_id: Mapped[uuid.UUID | None] = mapped_column()
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int] = mapped_column(SmallInteger)
    request_id: Mapped[str | None] = mapped_column(String(64))
    resource_ids: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
