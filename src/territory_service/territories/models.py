import enum
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, Versioned, string_enum
from territory_service.ids import new_id


class DistributionStrategy(enum.StrEnum):
    """How a territory chooses an owner among its members."""

    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    LEAST_LOADED = "least_loaded"


class MemberRole(enum.StrEnum):
    MEMBER = "member"
    MANAGER = "manager"


class Territory(Versioned, Base):
    """A node of the territory hierarchy (全国 > 华东 > 上海)."""

    __tablename__ = "territories"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("territories.id", ondelete="RESTRICT"), index=True
    )
    strategy: Mapped[DistributionStrategy] = mapped_column(
        string_enum(DistributionStrategy, "distribution_strategy"),
        default=DistributionStrategy.ROUND_ROBIN,
    )


class TerritoryMember(Versioned, Base):
    """An owner's place in a territory: role, share of new customers, and optional capacity."""

    __tablename__ = "territory_members"
    __table_args__ = (
        CheckConstraint("weight >= 1", name="weight_positive"),
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
    )

    territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territories.id", ondelete="CASCADE"), primary_key=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[MemberRole] = mapped_column(
        string_enum(MemberRole, "member_role"), default=MemberRole.MEMBER
    )
    weight: Mapped[int] = mapped_column(default=1)
    capacity: Mapped[int | None] = mapped_column()
