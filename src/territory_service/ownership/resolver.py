"""Resolving stored customers with the active rule set and recording the outcome.

The engine (`territory_service.engine`) decides; this module gathers what it needs from the
database (facts, current and group ownership, the territories involved with their members and
load) and writes what changed: the ownership row with its event, and the conflicts raised.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.conflicts.recorder import record_signals
from territory_service.customers.models import Customer
from territory_service.engine.directory import (
    Directory,
    Load,
    Member,
    OwnerInfo,
    Strategy,
    TerritoryInfo,
)
from territory_service.engine.facts import FIELDS, facts_of
from territory_service.engine.resolution import (
    ConflictSignal,
    Decision,
    Situation,
    resolve,
)
from territory_service.engine.ruleset import CompiledRuleSet
from territory_service.owners.repository import OwnerRepository
from territory_service.ownership.changes import SOURCES
from territory_service.ownership.models import Ownership
from territory_service.ownership.repository import OwnershipRepository
from territory_service.rulesets.compiled import compiled
from territory_service.rulesets.repository import RuleSetRepository
from territory_service.security.principal import Principal
from territory_service.territories.repository import MemberRepository, TerritoryRepository


@dataclass(frozen=True)
class Resolved:
    decisions: dict[uuid.UUID, Decision]
    changed: int  # ownership rows written


def customer_facts(customer: Customer) -> dict[str, object]:
    return facts_of({name: getattr(customer, name) for name in _FACT_COLUMNS})


# The customer columns rules read: the engine's fact fields, and the free-form attributes.
_FACT_COLUMNS = (*FIELDS, "attributes")


async def directory_for(
    session: AsyncSession,
    territory_ids: Iterable[uuid.UUID],
    *,
    named_owner_ids: Iterable[uuid.UUID] = (),
    lock_owners: bool = False,
) -> tuple[Directory, Load]:
    """The territories, their members and owners (and the owners the matching rules name, who
    need not be members), and their current load.

    `lock_owners`, for writers: the owners are read under key-share locks, in id order, so
    none of them can be deactivated before the caller commits what it gives them (see
    `OwnerRepository.locked`)."""
    ids = set(territory_ids)
    territories = await TerritoryRepository(session).by_ids(ids)
    members = await MemberRepository(session).of_territories(ids)
    owner_ids = {m.owner_id for m in members} | set(named_owner_ids)
    if lock_owners:
        owners = await OwnerRepository(session).locked(owner_ids)
    else:
        owners = await OwnerRepository(session).by_ids(owner_ids)
    infos = {
        t.id: TerritoryInfo(
            t.id,
            Strategy(t.strategy.value),
            tuple(
                Member(m.owner_id, m.weight, m.capacity)
                for m in sorted(members, key=lambda m: m.owner_id)
                if m.territory_id == t.id
            ),
        )
        for t in territories
    }
    directory = Directory(infos, {o.id: OwnerInfo(o.id, o.active, o.capacity) for o in owners})
    in_territory, total = await OwnershipRepository(session).load(
        territory_ids=ids, owner_ids={o.id for o in owners}
    )
    return directory, Load(Counter(in_territory), Counter(total))


async def group_root_ownership(
    session: AsyncSession, customer: Customer
) -> tuple[uuid.UUID | None, Ownership | None]:
    """The root of the customer's group and its ownership (None, None for a standalone)."""
    if customer.parent_id is None:
        return None, None
    root_id, seen = customer.parent_id, {customer.id}
    while True:
        parent = await session.get(Customer, root_id)
        if parent is None or parent.parent_id is None or parent.parent_id in seen:
            break
        seen.add(root_id)
        root_id = parent.parent_id
    return root_id, await OwnershipRepository(session).get(root_id)


async def _group_root_place(
    session: AsyncSession, customer: Customer
) -> tuple[uuid.UUID | None, tuple[uuid.UUID, uuid.UUID | None] | None]:
    """The root of the customer's group and its place (None when it has no ownership yet)."""
    root_id, root = await group_root_ownership(session, customer)
    return root_id, None if root is None else (root.territory_id, root.owner_id)


async def situation_of(
    session: AsyncSession, customer: Customer, ownership: Ownership | None
) -> Situation:
    return _situation(customer, ownership, *await _group_root_place(session, customer))


def _situation(
    customer: Customer,
    ownership: Ownership | None,
    root_id: uuid.UUID | None,
    root_place: tuple[uuid.UUID, uuid.UUID | None] | None,
) -> Situation:
    return Situation(
        customer_id=customer.id,
        territory_id=ownership.territory_id if ownership else None,
        owner_id=ownership.owner_id if ownership else None,
        locked=ownership.locked if ownership else False,
        group_root_id=root_id if root_place else None,
        group_territory_id=root_place[0] if root_place else None,
        group_owner_id=root_place[1] if root_place else None,
    )


async def decide(
    session: AsyncSession, ruleset: CompiledRuleSet, customer: Customer, ownership: Ownership | None
) -> Decision:
    """The engine's decision for a stored customer, without writing anything."""
    facts = customer_facts(customer)
    situation = await situation_of(session, customer, ownership)
    top = ruleset.match(facts).top
    involved = {rule.territory_id for rule in top} | {ruleset.spec.default_territory_id}
    involved |= {t for t in (situation.territory_id, situation.group_territory_id) if t}
    named = {rule.owner_id for rule in top if rule.owner_id is not None}
    directory, load = await directory_for(session, involved, named_owner_ids=named)
    return resolve(ruleset, facts, situation, directory, load)


async def resolve_customers(
    session: AsyncSession,
    customers: Sequence[Customer],
    *,
    actor: Principal | None,
    reason: str,
) -> Resolved:
    """Resolve customers with the active rule set and record what changed, in the caller's
    transaction: the ownership rows with their events, and the conflicts raised. Customers are
    taken in id order and each sees the load the earlier ones left, and a subsidiary the place
    its group's root got earlier in the batch, so one customer resolved alone and the same
    customer in a batch get the same owner. Empty when no rule set is active yet."""
    active = await RuleSetRepository(session).active()
    if active is None or not customers:
        return Resolved({}, 0)
    ruleset = await compiled(session, active)
    ownerships = OwnershipRepository(session)
    current = await ownerships.of_customers({c.id for c in customers}, for_update=True)
    ordered = sorted(customers, key=lambda c: c.id)
    facts = {c.id: customer_facts(c) for c in ordered}
    roots = {c.id: await _group_root_place(session, c) for c in ordered}
    situations = {c.id: _situation(c, current.get(c.id), *roots[c.id]) for c in ordered}
    involved, named = {ruleset.spec.default_territory_id}, set()
    for customer in ordered:
        top = ruleset.match(facts[customer.id]).top
        involved |= {rule.territory_id for rule in top}
        named |= {rule.owner_id for rule in top if rule.owner_id is not None}
        situation = situations[customer.id]
        involved |= {t for t in (situation.territory_id, situation.group_territory_id) if t}
    directory, load = await directory_for(
        session, involved, named_owner_ids=named, lock_owners=True
    )
    decisions: dict[uuid.UUID, Decision] = {}
    signals: list[ConflictSignal] = []
    changed = 0
    for customer in ordered:
        situation = situations[customer.id]
        root_id = roots[customer.id][0]
        if root_id in decisions:  # the root was resolved a moment ago: its new place counts
            root = decisions[root_id]
            root_place = (root.territory_id, root.owner_id)
            situation = _situation(customer, current.get(customer.id), root_id, root_place)
        decision = resolve(ruleset, facts[customer.id], situation, directory, load)
        decisions[customer.id] = decision
        signals.extend(decision.conflicts)
        before = current.get(customer.id)
        if decision.source in SOURCES and (before is None or decision.changes(situation)):
            changed += 1
            ownerships.assign_decided(customer.id, before, decision, reason=reason, actor=actor)
            old = None if before is None else (situation.territory_id, situation.owner_id)
            load.move(old, (decision.territory_id, decision.owner_id))  # type: ignore[arg-type]
    await session.flush()
    await record_signals(session, signals, ruleset_version=active.number)
    return Resolved(decisions, changed)
