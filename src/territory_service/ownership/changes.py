"""One ownership change: the values of the row it leaves and of the event that records it.

Every writer of ownership builds its changes here: the single path through the ORM
(`OwnershipRepository`) and the set-based pass that writes thousands of rows per statement
(`ownership/pool_writes.py`). So what a change writes (when the pool's reclaim clock restarts,
what an event carries, which decisions write at all) has this one home, and anything that must
accompany every change has one place to hook in.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, NamedTuple

from territory_service.engine.resolution import Decision, Source
from territory_service.logs import request_id_var
from territory_service.ownership.models import Ownership, OwnershipSource
from territory_service.security.principal import Principal

Place = tuple[uuid.UUID | None, uuid.UUID | None]  # (territory, owner); owner None: the pool

# The engine's decisions that write a row, and the source they write; the others (a customer
# kept where it is, left unassigned) write nothing.
SOURCES = {Source.RULE: OwnershipSource.RULE, Source.GROUP: OwnershipSource.GROUP}

# Moves that pass a customer from owner to owner without anyone deciding to work it anew keep
# the pool's reclaim clock running (a hand-over must not buy a rep more time).
KEEPS_CLOCK = frozenset({OwnershipSource.TRANSFER, OwnershipSource.GROUP, OwnershipSource.MERGE})


class Attribution(NamedTuple):
    """Who made a write and why: the same for every change one write makes."""

    reason: str | None
    actor_key_id: uuid.UUID | None
    acting_owner_id: uuid.UUID | None
    request_id: str | None

    @classmethod
    def of(cls, *, reason: str | None, actor: Principal | None) -> Attribution:
        acting = actor.acting_owner if actor else None
        return cls(
            reason,
            actor.key_id if actor else None,
            acting.id if acting else None,
            request_id_var.get(),
        )


# Both are named tuples: a pass over the pool makes one of each per customer it moves, and a
# tuple is made several times faster than a frozen dataclass.
class Held(NamedTuple):
    """What a change needs to know of the row it replaces."""

    version: int
    territory_id: uuid.UUID
    owner_id: uuid.UUID | None
    held_since: dt.datetime | None

    @classmethod
    def of(cls, ownership: Ownership | None) -> Held | None:
        if ownership is None:
            return None
        return cls(
            ownership.version, ownership.territory_id, ownership.owner_id, ownership.held_since
        )


class OwnershipChange(NamedTuple):
    """A customer's ownership going from `before` (None: no row yet) to a new place."""

    customer_id: uuid.UUID
    before: Held | None
    territory_id: uuid.UUID | None  # None only when the customer leaves (deleted, merged away)
    owner_id: uuid.UUID | None
    source: OwnershipSource
    rule_id: uuid.UUID | None
    ruleset_version: int | None
    locked: bool
    at: dt.datetime

    @classmethod
    def decided(
        cls, customer_id: uuid.UUID, before: Held | None, decision: Decision, *, at: dt.datetime
    ) -> OwnershipChange:
        """The change an engine decision makes (its source must be one of `SOURCES`)."""
        return cls(
            customer_id,
            before,
            decision.territory_id,
            decision.owner_id,
            SOURCES[decision.source],
            decision.rule_id,
            decision.ruleset_version,
            False,
            at,
        )

    @property
    def version(self) -> int:
        """The row's version after the change; the write is a compare-and-set on the one before."""
        return 1 if self.before is None else self.before.version + 1

    @property
    def held_since(self) -> dt.datetime | None:
        """When the new owner's hold began: None in the pool, kept for the same owner and for
        moves that keep the clock, else now."""
        before = self.before
        if self.owner_id is None:
            return None
        if before is None or before.owner_id is None:
            return self.at
        keeps = before.owner_id == self.owner_id or self.source in KEEPS_CLOCK
        return before.held_since if keeps else self.at

    def row(self) -> dict[str, Any]:
        """The ownership row's columns after the change."""
        return {**self._shared(), "assigned_at": self.at, "held_since": self.held_since}

    def event(self, by: Attribution) -> dict[str, Any]:
        """The columns of the event that records the change."""
        before = self.before
        return {
            **self._shared(),
            "from_territory_id": None if before is None else before.territory_id,
            "from_owner_id": None if before is None else before.owner_id,
            "created_at": self.at,
            **by._asdict(),
        }

    def _shared(self) -> dict[str, Any]:
        """The columns the row and its event both have, with the same values."""
        return {
            "customer_id": self.customer_id,
            "version": self.version,
            "territory_id": self.territory_id,
            "owner_id": self.owner_id,
            "source": self.source,
            "rule_id": self.rule_id,
            "ruleset_version": self.ruleset_version,
            "locked": self.locked,
        }
