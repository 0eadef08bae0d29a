from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, JSONDocument, UTCDateTime, utcnow


class IdempotencyRecord(Base):
    """The first answer to a POST sent with an `Idempotency-Key`, kept so that a retry with the
    same key replays it. Keys belong to the API key that sent them."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    key_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # What the key was first used for: a hash of the method, the path and the body.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # While NULL the first request is still running; it owns the key until `lease_until`.
    response_status: Mapped[int | None] = mapped_column()
    response_headers: Mapped[list[Any] | None] = mapped_column(JSONDocument)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Names the request holding the lease, so that one whose lease lapsed and was taken over
    # can neither store its answer nor release the key of the request that took it.
    lease_token: Mapped[uuid.UUID] = mapped_column()
    lease_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
