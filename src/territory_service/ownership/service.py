"""Reading a customer's ownership: now, why, and how it got there; and stateless resolution."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.customers.models import Customer
from territory_service.customers.repository import CustomerRepository
from territory_service.errors import Conflict, NotFound
from territory_service.ownership.models import Ownership, OwnershipEvent
from territory_service.ownership.repository import OwnershipRepository
from territory_service.ownership.resolver import (
    DirectoryCache,
    customer_facts,
    decide,
)
from territory_service.ownership.schemas import Decision, Explanation, OwnershipOut
from territory_service.pagination import Page
from territory_service.rules import resolution
from territory_service.rules.facts import facts_of
from territory_service.rules.ruleset import CompiledRuleSet
from territory_service.rulesets.repository import RuleSetRepository
from territory_service.rulesets.service import compiled
from territory_service.security.principal import Principal
from territory_service.transaction import transaction


class NoActiveRuleSet(Conflict):
    slug = "no-active-ruleset"
    title = "No rule set is active"

    def __init__(self) -> None:
        super().__init__("no rule set is active yet; create one and activate it")


async def _active(session: AsyncSession) -> CompiledRuleSet:
    ruleset = await RuleSetRepository(session).active()
    if ruleset is None:
        raise NoActiveRuleSet()
    return await compiled(session, ruleset)


def decision_out(
    ruleset: CompiledRuleSet, facts: dict[str, Any], decision: resolution.Decision
) -> Decision:
    return Decision.model_validate(
        {
            "ruleset_version": decision.ruleset_version,
            "territory_id": decision.territory_id,
            "owner_id": decision.owner_id,
            "source": decision.source.value,
            "rule_id": decision.rule_id,
            "matches": [
                {
                    "rule_id": rule.id,
                    "name": rule.name,
                    "priority": rule.priority,
                    "territory_id": rule.territory_id,
                    "owner_id": rule.owner_id,
                }
                for rule in ruleset.all_matches(facts)
            ],
            "trace": [vars(step) for step in decision.trace],
            "conflicts": [conflict.kind.value for conflict in decision.conflicts],
        }
    )


async def visible_customer(
    session: AsyncSession, customer_id: uuid.UUID, principal: Principal
) -> Customer:
    """The customer, when the caller's key reaches it (404 otherwise)."""
    return await CustomerRepository(session, roots=principal.territory_ids).get_or_raise(
        customer_id
    )


async def get_ownership(
    session: AsyncSession, *, customer_id: uuid.UUID, principal: Principal
) -> Ownership:
    async with transaction(session, resource="ownership"):
        await visible_customer(session, customer_id, principal)
        ownership = await OwnershipRepository(session).get(customer_id)
        if ownership is None:
            raise NotFound("ownership of customer", customer_id)
        return ownership


async def explain(
    session: AsyncSession, *, customer_id: uuid.UUID, principal: Principal
) -> Explanation:
    async with transaction(session, resource="ownership"):
        customer = await visible_customer(session, customer_id, principal)
        ruleset = await _active(session)
        ownership = await OwnershipRepository(session).get(customer_id)
        decision = await decide(session, ruleset, customer, ownership)
        return Explanation(
            customer_id=customer_id,
            current=None if ownership is None else OwnershipOut.model_validate(ownership),
            decision=decision_out(ruleset, customer_facts(customer), decision),
        )


async def history(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    principal: Principal,
) -> Page[OwnershipEvent]:
    async with transaction(session, resource="ownership"):
        await visible_customer(session, customer_id, principal)
        return await OwnershipRepository(session).history(customer_id, limit=limit, cursor=cursor)


async def resolve_facts(
    session: AsyncSession, *, customer: dict[str, Any], directories: DirectoryCache
) -> Decision:
    """Who would own a customer with these facts? Nothing is read but the active rule set and
    the territories (through `directories`), and nothing is written."""
    async with transaction(session, resource="ownership"):
        ruleset = await _active(session)
        facts = facts_of(customer)
        involved = {rule.territory_id for rule in ruleset.match(facts).top}
        directory, load = await directories.get(
            session, involved | {ruleset.spec.default_territory_id}
        )
        # Not a stored customer: an id derived from the facts lets the strategies spread
        # previews as they spread customers (a stored one may get another member).
        pseudo_id = uuid.uuid5(
            uuid.NAMESPACE_OID, json.dumps(customer, sort_keys=True, default=str)
        )
        situation = resolution.Situation(customer_id=pseudo_id)
        decision = resolution.resolve(ruleset, facts, situation, directory, load)
        return decision_out(ruleset, facts, decision)
