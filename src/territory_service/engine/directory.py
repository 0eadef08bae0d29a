"""What resolution needs to know about territories, their members and how loaded they are."""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


class Strategy(enum.StrEnum):
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    LEAST_LOADED = "least_loaded"


@dataclass(frozen=True)
class Member:
    owner_id: uuid.UUID
    weight: int = 1
    capacity: int | None = None  # customers this member may hold in this territory


@dataclass(frozen=True)
class TerritoryInfo:
    id: uuid.UUID
    strategy: Strategy = Strategy.ROUND_ROBIN
    members: tuple[Member, ...] = ()


@dataclass(frozen=True)
class OwnerInfo:
    id: uuid.UUID
    active: bool = True
    capacity: int | None = None  # customers this owner may hold across all territories


@dataclass
class Load:
    """Customers held per (territory, owner) and per owner. Bulk resolution updates it as it
    assigns, so later customers in the same run see the earlier assignments."""

    in_territory: Counter[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=Counter)
    total: Counter[uuid.UUID] = field(default_factory=Counter)

    def move(
        self,
        old: tuple[uuid.UUID, uuid.UUID | None] | None,
        new: tuple[uuid.UUID, uuid.UUID | None] | None,
    ) -> None:
        if old is not None and old[1] is not None:
            self.in_territory[(old[0], old[1])] -= 1
            self.total[old[1]] -= 1
        if new is not None and new[1] is not None:
            self.in_territory[(new[0], new[1])] += 1
            self.total[new[1]] += 1


@dataclass(frozen=True)
class Directory:
    territories: Mapping[uuid.UUID, TerritoryInfo]
    owners: Mapping[uuid.UUID, OwnerInfo]
    _members: dict[tuple[uuid.UUID, uuid.UUID], Member] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        members = {(t.id, m.owner_id): m for t in self.territories.values() for m in t.members}
        object.__setattr__(self, "_members", members)

    def unbounded(self) -> frozenset[tuple[uuid.UUID, uuid.UUID]]:
        """The (territory, owner) memberships whose room never depends on the load: the owner
        is active and neither the member nor the owner has a capacity. A customer held by one
        of them stays (stability first) whatever the run has moved so far."""
        return frozenset(
            key
            for key, member in self._members.items()
            if member.capacity is None
            and (owner := self.owners.get(member.owner_id)) is not None
            and owner.active
            and owner.capacity is None
        )

    def closed(self) -> frozenset[uuid.UUID]:
        """The territories in which no member can take a customer whatever the load: none has
        an active owner (or there are no members). Their customers stay in the pool."""
        return frozenset(
            territory.id
            for territory in self.territories.values()
            if not any(
                (owner := self.owners.get(member.owner_id)) is not None and owner.active
                for member in territory.members
            )
        )

    def member(self, territory_id: uuid.UUID, owner_id: uuid.UUID) -> Member | None:
        return self._members.get((territory_id, owner_id))

    def has_room(
        self, territory_id: uuid.UUID, member: Member, load: Load, *, holds_it: bool = False
    ) -> bool:
        """The member's owner is active and below both its capacities. `holds_it`: the customer
        is already counted in that load (it stays, it does not arrive)."""
        owner = self.owners.get(member.owner_id)
        if owner is None or not owner.active:
            return False
        own = 1 if holds_it else 0
        in_territory = load.in_territory[(territory_id, member.owner_id)] - own
        if member.capacity is not None and in_territory >= member.capacity:
            return False
        return owner.capacity is None or load.total[member.owner_id] - own < owner.capacity
