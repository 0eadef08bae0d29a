import datetime as dt
import uuid

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, JSONDocument, UTCDateTime, Versioned
from territory_service.ids import new_id


class ApiKey(Versioned, Base):
    """A credential for one integration. Only the secret's hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    # The first characters of the secret, so people can tell their keys apart in lists.
    display_prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSONDocument)
    # Roots of the territory subtrees the key is confined to; NULL: every territory.
    territory_ids: Mapped[list[str] | None] = mapped_column(JSONDocument)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
