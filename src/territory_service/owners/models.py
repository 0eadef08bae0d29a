import uuid

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, Versioned
from territory_service.ids import new_id


class Owner(Versioned, Base):
    """A sales rep or a team queue that customers can belong to."""

    __tablename__ = "owners"
    __table_args__ = (CheckConstraint("capacity >= 0", name="capacity_non_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(default=True)
    capacity: Mapped[int | None] = mapped_column()
