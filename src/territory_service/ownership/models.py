import datetime as dt
import enum
import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from territory_service.db import Base, UTCDateTime, string_enum, utcnow


class OwnershipSource(enum.StrEnum):
    """What put a customer with its current owner."""

    RULE = "rule"
    MANUAL = "manual"
    CLAIM = "claim"
    TRANSFER = "transfer"
    GROUP = "group"
    MERGE = "merge"
    RELEASE = "release"  # an owner gave it back to the pool
    RECLAIM = "reclaim"  # the pool took it back after too long without follow-up


_source_type = string_enum(OwnershipSource, "ownership_source")


class Ownership(Base):
    """The one current owner of a customer. Keyed by customer, so there can never be two."""

    __tablename__ = "ownerships"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territories.id", ondelete="RESTRICT"), index=True
    )
    # NULL: the customer waits in the territory's pool (公海).
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("owners.id", ondelete="RESTRICT"), index=True
    )
    source: Mapped[OwnershipSource] = mapped_column(_source_type)
    rule_id: Mapped[uuid.UUID | None] = mapped_column()
    ruleset_version: Mapped[int | None] = mapped_column()
    locked: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column()
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the current owner's hold began: the pool's reclaim clock runs from the later of this
    # and the customer's last follow-up. Transfers, hand-overs, group moves and merges keep it,
    # so moving a customer around never resets the clock. NULL while in the pool.
    held_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __mapper_args__ = {"version_id_col": version}


class OwnershipEvent(Base):
    """Append-only history: one row per ownership change, written in the change's transaction.

    The id increases monotonically and is the change feed's cursor. There is deliberately no
    foreign key to customers: history outlives a deleted customer.
    """

    __tablename__ = "ownership_events"
    __table_args__ = (
        UniqueConstraint("customer_id", "version"),
        Index("uq_ownership_events_position", "position", unique=True),
        # Claims per owner and day (the pool's daily claim limit).
        Index(
            "ix_ownership_events_claims",
            "owner_id",
            "created_at",
            sqlite_where=text("source = 'claim'"),
            postgresql_where=text("source = 'claim'"),
        ),
        Index(
            "ix_ownership_events_unsequenced",
            "id",
            sqlite_where=text("position IS NULL"),
            postgresql_where=text("position IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # Looked up through the unique (customer_id, version).
    customer_id: Mapped[uuid.UUID] = mapped_column()
    # The ownership version this event produced; versions of one customer form an unbroken chain.
    version: Mapped[int] = mapped_column()
    from_territory_id: Mapped[uuid.UUID | None] = mapped_column()
    from_owner_id: Mapped[uuid.UUID | None] = mapped_column()
    # NULL territory: the customer left the pool (deleted or merged away).
    territory_id: Mapped[uuid.UUID | None] = mapped_column()
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    source: Mapped[OwnershipSource] = mapped_column(_source_type)
    rule_id: Mapped[uuid.UUID | None] = mapped_column()
    ruleset_version: Mapped[int | None] = mapped_column()
    locked: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    # Who made the change: the API key, and the owner it acted for (X-Act-As).
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column()
    acting_owner_id: Mapped[uuid.UUID | None] = mapped_column()
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The change feed's order, given once the event is committed (`events/feed.py`): an event
    # that commits late gets a later position even when its id is smaller.
    position: Mapped[int | None] = mapped_column(BigInteger())


class PlannedChange(Base):
    """A change a re-division decided: the values of an `OwnershipChange`
    (`ownership/changes.py`) but those of the attribution, which the job keeps. `piece` is the
    number of the job's piece that applies it; `generation` tells the plans of two attempts
    apart. A piece applied while the plan is still being made keeps its rows until the plan is
    done (another attempt at it would need them); after that, applying drops them."""

    __tablename__ = "planned_changes"

    # One index, the key: a piece is read and dropped by its prefix. No foreign key to the
    # job: checking one per row would cost a fifth of storing a plan; the job's steps drop
    # its rows when they are done with them.
    job_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    piece: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column()
    from_territory_id: Mapped[uuid.UUID | None] = mapped_column()
    from_owner_id: Mapped[uuid.UUID | None] = mapped_column()
    territory_id: Mapped[uuid.UUID | None] = mapped_column()
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    source: Mapped[OwnershipSource] = mapped_column(_source_type)
    rule_id: Mapped[uuid.UUID | None] = mapped_column()
    ruleset_version: Mapped[int | None] = mapped_column()
    locked: Mapped[bool] = mapped_column()
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    held_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The row's hold before the change: with `from_*` and `version`, the row as it was, which a
    # plan made again after a partial apply needs (`PoolRun.prepare(undo=...)`).
    from_held_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
