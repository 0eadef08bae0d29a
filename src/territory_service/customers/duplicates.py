"""Duplicates (撞单): customers that look like one company.

Two customers are duplicates when they share a registration id (case and hyphens folded:
`registration_key`) or a normalized name (`names.normalize_name`). Both are indexed, so
detection costs one query however many customers a request writes. When duplicates have
different owners (a customer waiting in a pool has none), a `duplicate_customer` conflict is
logged, once per pair while it is open. Similar names (by `min_similarity`) are only listed on
request: they are a hint for a person, never a conflict.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.conflicts.recorder import Detection, record_detections
from territory_service.customers.models import Customer
from territory_service.customers.names import at_least_as_similar, name_similarity
from territory_service.customers.repository import CustomerRepository, IdentityRow
from territory_service.customers.schemas import (
    CustomerOwnership,
    Duplicate,
    DuplicateList,
    DuplicateReason,
)
from territory_service.engine.resolution import ConflictKind, ConflictSignal
from territory_service.security.principal import Principal
from territory_service.territories.repository import TerritoryRepository
from territory_service.transaction import transaction

# Duplicates compared per written customer and per value (name or registration id): a name a
# CRM uses as a placeholder ("个人", "test") must not turn one write into thousands of pairs.
PAIRS_PER_CUSTOMER = 20
# Names read when looking for similar ones, best candidates (most shared characters) first.
SIMILARITY_SCAN = 5000


@dataclass(frozen=True)
class _Pair:
    first: IdentityRow
    second: IdentityRow
    reasons: tuple[DuplicateReason, ...]


def pair_cause(first_id: uuid.UUID, second_id: uuid.UUID) -> tuple[str, ...]:
    """A duplicate pair's conflict cause: the same whichever of the two was written last."""
    low, high = sorted((first_id, second_id))
    return ("customers", str(low), str(high))


def reasons_between(
    first: IdentityRow | Customer, second: IdentityRow | Customer
) -> tuple[DuplicateReason, ...]:
    """Why two customers look like one company (empty: they do not)."""
    reasons = []
    if first.registration_key is not None and first.registration_key == second.registration_key:
        reasons.append(DuplicateReason.REGISTRATION_ID)
    if first.normalized_name and first.normalized_name == second.normalized_name:
        reasons.append(DuplicateReason.NORMALIZED_NAME)
    return tuple(reasons)


def _identities(row: IdentityRow) -> list[tuple[str, str]]:
    """The values a customer is matched on: its folded name and registration id."""
    values = [("name", row.normalized_name)] if row.normalized_name else []
    if row.registration_key is not None:
        values.append(("registration", row.registration_key))
    return values


def _pairs(written: set[uuid.UUID], rows: Sequence[IdentityRow]) -> list[_Pair]:
    """Each written customer with up to `PAIRS_PER_CUSTOMER` others sharing an identity, oldest
    first; a pair of two written customers once."""
    by_id = {row.id: row for row in rows}
    holders: dict[tuple[str, str], list[IdentityRow]] = {}
    for row in sorted(by_id.values(), key=lambda row: row.id):
        for value in _identities(row):
            holders.setdefault(value, []).append(row)
    pairs: dict[tuple[str, ...], _Pair] = {}
    for customer in sorted((by_id[i] for i in written if i in by_id), key=lambda row: row.id):
        others = {
            other.id: other
            for value in _identities(customer)
            for other in holders[value]
            if other.id != customer.id
        }
        for other in sorted(others.values(), key=lambda row: row.id)[:PAIRS_PER_CUSTOMER]:
            first, second = sorted((customer, other), key=lambda row: row.id)
            cause = pair_cause(first.id, second.id)
            if cause not in pairs:
                pairs[cause] = _Pair(first, second, reasons_between(first, second))
    return list(pairs.values())


async def detect_duplicates(
    session: AsyncSession, customers: Sequence[Customer]
) -> list[uuid.UUID]:
    """Look for duplicates of customers just written (and resolved), in the caller's
    transaction, and log a conflict for each pair with different owners. Returns the
    customers found with a duplicate."""
    written = {c.id for c in customers if c.normalized_name or c.registration_key}
    if not written:
        return []
    await session.flush()
    rows = await CustomerRepository(session).identity_rows(
        ids=written,
        names={c.normalized_name for c in customers if c.normalized_name},
        registration_keys={c.registration_key for c in customers if c.registration_key},
        per_value=PAIRS_PER_CUSTOMER + 1,
    )
    pairs = _pairs(written, rows)
    split = [pair for pair in pairs if pair.first.owner_id != pair.second.owner_id]
    territories = _CommonTerritories(TerritoryRepository(session))
    detections = []
    for pair in split:
        first, second = pair.first, pair.second
        signal = ConflictSignal(
            ConflictKind.DUPLICATE_CUSTOMER,
            pair_cause(first.id, second.id),
            first.id,
            territory_id=await territories.common(first.territory_id, second.territory_id),
            owner_ids=tuple(o for o in (first.owner_id, second.owner_id) if o is not None),
            details={
                "reasons": [reason.value for reason in pair.reasons],
                "normalized_name": first.normalized_name,
                "registration_key": first.registration_key
                if DuplicateReason.REGISTRATION_ID in pair.reasons
                else None,
            },
        )
        detections.append(Detection(signal, (first.id, second.id)))
    await record_detections(session, detections, ruleset_version=None)
    return sorted({row.id for pair in pairs for row in (pair.first, pair.second)} & written)


class _CommonTerritories:
    """The smallest territory holding both of two (a conflict about both lies there, so a key
    confined to it sees the conflict); looked up once per territory."""

    def __init__(self, repository: TerritoryRepository) -> None:
        self.repository = repository
        self._ancestors: dict[uuid.UUID, set[uuid.UUID]] = {}
        self._parents: dict[uuid.UUID, uuid.UUID | None] = {}

    async def common(self, first: uuid.UUID | None, second: uuid.UUID | None) -> uuid.UUID | None:
        if first is None or second is None or first == second:
            return first or second
        shared = await self._ancestors_of(first) & await self._ancestors_of(second)
        missing = shared - self._parents.keys()
        for territory in await self.repository.by_ids(missing):
            self._parents[territory.id] = territory.parent_id
        deepest = shared - {self._parents.get(t) for t in shared}
        return min(deepest) if deepest else None

    async def _ancestors_of(self, territory_id: uuid.UUID) -> set[uuid.UUID]:
        if territory_id not in self._ancestors:
            self._ancestors[territory_id] = await self.repository.ancestor_ids(territory_id)
        return self._ancestors[territory_id]


_LONGEST_NAME: int = getattr(Customer.__table__.c.normalized_name.type, "length", 200)


def _length_bounds(length: int, threshold: float) -> tuple[int, int | None]:
    """Lengths a name may have and still reach `threshold` against a name of `length`:
    difflib's ratio is at most twice the shorter length over both lengths."""
    if threshold <= 0:
        return 0, None
    low = math.ceil(length * threshold / (2 - threshold) - 1e-9)
    high = length * (2 - threshold) / threshold
    # A tiny threshold bounds nothing (its bound may not even be a finite number).
    return low, (math.floor(high + 1e-9) if high < _LONGEST_NAME else None)


async def list_duplicates(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    min_similarity: float | None,
    limit: int,
    principal: Principal,
) -> DuplicateList:
    repository = CustomerRepository(session, roots=principal.territory_ids)
    async with transaction(session, resource="customer"):
        customer = await repository.get_or_raise(customer_id)
        exact = await repository.same_identity(customer, limit=limit)
        similar: list[tuple[Customer, float]] = []
        if min_similarity is not None and customer.normalized_name and len(exact) < limit:
            similar = await _similar(repository, customer, min_similarity, limit - len(exact))
            seen = {c.id for c in exact}
            similar = [(c, score) for c, score in similar if c.id not in seen]
        items = [
            _duplicate(customer, other, reasons_between(customer, other), None) for other in exact
        ]
        items += [
            _duplicate(customer, other, (DuplicateReason.SIMILAR_NAME,), score)
            for other, score in similar
        ]
        return DuplicateList(
            customer_id=customer.id, normalized_name=customer.normalized_name, items=items
        )


async def _similar(
    repository: CustomerRepository, customer: Customer, threshold: float, limit: int
) -> list[tuple[Customer, float]]:
    name = customer.normalized_name
    candidates = await repository.names_sharing_pairs(
        name,
        length=_length_bounds(len(name), threshold),
        exclude=customer.id,
        scan=SIMILARITY_SCAN,
    )
    scores: dict[uuid.UUID, float] = {}
    for other_id, other_name in candidates:
        score = at_least_as_similar(name, other_name, threshold)
        if score is not None:
            scores[other_id] = score
    best = sorted(scores, key=lambda other_id: (-scores[other_id], other_id))[:limit]
    found = {c.id: c for c in await repository.by_ids(set(best))} if best else {}
    return [(found[other_id], scores[other_id]) for other_id in best if other_id in found]


def _duplicate(
    customer: Customer,
    other: Customer,
    reasons: tuple[DuplicateReason, ...],
    score: float | None,
) -> Duplicate:
    mine = customer.ownership.owner_id if customer.ownership else None
    theirs = other.ownership.owner_id if other.ownership else None
    similarity = name_similarity(customer.normalized_name, other.normalized_name)
    return Duplicate(
        id=other.id,
        source=other.source,
        external_id=other.external_id,
        name=other.name,
        registration_id=other.registration_id,
        reasons=list(reasons),
        similarity=round(score if score is not None else similarity, 4),
        ownership=CustomerOwnership.model_validate(other.ownership) if other.ownership else None,
        same_owner=mine == theirs,
    )
