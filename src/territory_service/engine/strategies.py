"""Choosing an owner among a territory's members with room. Deterministic: the same customer,
members and load always give the same owner, in a single resolve and in bulk alike."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence

from territory_service.engine.directory import Load, Member, Strategy


def _unit_hash(customer_id: uuid.UUID, owner_id: uuid.UUID) -> float:
    """A number in (0, 1) fixed by the pair."""
    digest = hashlib.blake2b(customer_id.bytes + owner_id.bytes, digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 1) / (2**64 + 2)


def choose_owner(
    strategy: Strategy,
    customer_id: uuid.UUID,
    territory_id: uuid.UUID,
    candidates: Sequence[Member],
    load: Load,
) -> Member:
    """`candidates` are the members with room, non-empty.

    - round_robin: spreads customers evenly by hashing the customer over the members, so the
      choice needs no shared counter and is the same on every replica;
    - weighted: the same, each member drawing in proportion to its weight (rendezvous hashing);
    - least_loaded: the member holding the fewest customers of the territory.
    """
    ordered = sorted(candidates, key=lambda member: member.owner_id)
    if strategy is Strategy.LEAST_LOADED:
        return min(
            ordered, key=lambda member: (load.in_territory[(territory_id, member.owner_id)],)
        )
    if strategy is Strategy.WEIGHTED:
        return max(
            ordered,
            key=lambda member: member.weight / -math.log(_unit_hash(customer_id, member.owner_id)),
        )
    return max(ordered, key=lambda member: _unit_hash(customer_id, member.owner_id))
