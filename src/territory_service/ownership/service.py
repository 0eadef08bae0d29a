"""Reading a customer's ownership: now, why, and how it got there; and stateless resolution."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.customers.models import Customer
from territory_service.customers.repository import CustomerRepository
from territory_service.engine import resolution
from territory_service.engine.ruleset import CompiledRuleSet
from territory_service.errors import Conflict, NotFound
from territory_service.ownership.models import Ownership, OwnershipEvent
from territory_service.ownership.repository import OwnershipRepository
from territory_service.ownership.resolver import customer_facts, decide
from territory_service.ownership.schemas import Decision, Explanation, OwnershipOut
from territory_service.pagination import Page
from territory_service.rulesets.compiled import compiled
from territory_service.rulesets.repository import RuleSetRepository
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
