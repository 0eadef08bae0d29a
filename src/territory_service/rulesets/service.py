"""Rule-set and rule use cases: each is one transaction. Only drafts are edited."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.db import utcnow
from territory_service.engine.analysis import analyse
from territory_service.engine.conditions import check_condition
from territory_service.engine.ruleset import TiePolicy
from territory_service.errors import Conflict, InvalidReference, NotFound, ServiceError
from territory_service.owners.repository import OwnerRepository
from territory_service.pagination import Page
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.rulesets.compiled import spec_of
from territory_service.rulesets.condition_schemas import ConditionIn, to_engine
from territory_service.rulesets.models import RuleRow, RuleSet, RuleSetState
from territory_service.rulesets.repository import RuleRepository, RuleSetRepository
from territory_service.rulesets.schemas import (
    RuleCreate,
    RuleSetCreate,
    RuleSetUpdate,
    RuleUpdate,
    ValidationIssue,
    ValidationReport,
)
from territory_service.territories.repository import MemberRepository, TerritoryRepository
from territory_service.transaction import transaction


class NotDraft(Conflict):
    slug = "ruleset-not-draft"
    title = "Only a draft rule set can be changed"

    def __init__(self, ruleset: RuleSet) -> None:
        super().__init__(
            f"rule set {ruleset.number} is {ruleset.state}; create a draft (copy_active) to "
            "change the rules",
            state=ruleset.state.value,
        )


class InvalidCondition(ServiceError):
    status = 422
    slug = "invalid-condition"
    title = "The rule's condition is not valid"


def check_rule_condition(condition: ConditionIn) -> None:
    """Field and operator checks the schema cannot make; errors point at the predicate."""
    errors = check_condition(to_engine(condition))
    if errors:
        raise InvalidCondition(
            "; ".join(f"{e.path}: {e.message}" for e in errors[:5]),
            errors=[
                {"pointer": "#/condition/" + _pointer(e.path), "detail": e.message} for e in errors
            ],
        )


def _pointer(path: str) -> str:
    # "any_of[1].all_of[0].value" -> "any_of/1/all_of/0/value"
    return re.sub(r"\[(\d+)\]", r"/\1", path).replace(".", "/")


async def _check_references(
    session: AsyncSession, *, territory_id: uuid.UUID | None, owner_id: uuid.UUID | None
) -> None:
    if territory_id is not None and await TerritoryRepository(session).get(territory_id) is None:
        raise InvalidReference("territory_id", "territory", territory_id)
    if owner_id is not None and await OwnerRepository(session).get(owner_id) is None:
        raise InvalidReference("owner_id", "owner", owner_id)


async def create_ruleset(session: AsyncSession, *, data: RuleSetCreate) -> RuleSet:
    rulesets = RuleSetRepository(session)
    async with transaction(session, resource="rule set"):
        territory = await TerritoryRepository(session).get(data.default_territory_id)
        if territory is None:
            raise InvalidReference("default_territory_id", "territory", data.default_territory_id)
        active = await rulesets.active() if data.copy_active else None
        if data.copy_active and active is None:
            raise Conflict("there is no active rule set to copy")
        ruleset = await rulesets.add(
            RuleSet(
                number=await rulesets.next_number(),
                name=data.name,
                description=data.description,
                default_territory_id=data.default_territory_id,
                tie_policy=data.tie_policy,
                copied_from_id=active.id if active else None,
            )
        )
        if active is not None:
            for row in await RuleRepository(session).of_ruleset(active.id):
                session.add(
                    RuleRow(
                        ruleset_id=ruleset.id,
                        **{c: getattr(row, c) for c in _RULE_COPY_COLUMNS},
                    )
                )
            await session.flush()
    return ruleset


_RULE_COPY_COLUMNS = (
    "name",
    "priority",
    "condition",
    "territory_id",
    "owner_id",
    "enabled",
    "position",
)


async def get_ruleset(session: AsyncSession, *, ruleset_id: uuid.UUID) -> RuleSet:
    async with transaction(session, resource="rule set"):
        return await RuleSetRepository(session).get_or_raise(ruleset_id)


async def list_rulesets(
    session: AsyncSession, *, state: RuleSetState | None, limit: int, cursor: str | None
) -> Page[RuleSet]:
    async with transaction(session, resource="rule set"):
        return await RuleSetRepository(session).page(state=state, limit=limit, cursor=cursor)


async def _draft(session: AsyncSession, ruleset_id: uuid.UUID) -> RuleSet:
    ruleset = await RuleSetRepository(session).get_or_raise(ruleset_id, for_update=True)
    if ruleset.state is not RuleSetState.DRAFT:
        raise NotDraft(ruleset)
    return ruleset


async def _touch(session: AsyncSession, ruleset: RuleSet) -> None:
    """A change to a draft's rules is a change of the draft: its version moves on (and with it
    the key of its compiled form)."""
    await RuleSetRepository(session).update(ruleset, {"updated_at": utcnow()})


async def update_ruleset(
    session: AsyncSession,
    *,
    ruleset_id: uuid.UUID,
    data: RuleSetUpdate,
    expected: ExpectedVersion | None,
) -> RuleSet:
    changes = data.provided()
    async with transaction(session, resource="rule set"):
        ruleset = await _draft(session, ruleset_id)
        check_expected(expected, "rule set", ruleset.version)
        if changes.get("default_territory_id") is not None:
            territory_id = changes["default_territory_id"]
            if await TerritoryRepository(session).get(territory_id) is None:
                raise InvalidReference("default_territory_id", "territory", territory_id)
        return await RuleSetRepository(session).update(ruleset, changes)


async def delete_ruleset(
    session: AsyncSession, *, ruleset_id: uuid.UUID, expected: ExpectedVersion | None
) -> None:
    async with transaction(session, resource="rule set"):
        ruleset = await _draft(session, ruleset_id)
        check_expected(expected, "rule set", ruleset.version)
        await RuleSetRepository(session).delete(ruleset)


async def create_rule(session: AsyncSession, *, ruleset_id: uuid.UUID, data: RuleCreate) -> RuleRow:
    check_rule_condition(data.condition)
    rules = RuleRepository(session)
    async with transaction(session, resource="rule"):
        ruleset = await _draft(session, ruleset_id)
        await _check_references(session, territory_id=data.territory_id, owner_id=data.owner_id)
        rule = await rules.add(
            RuleRow(
                ruleset_id=ruleset_id,
                position=await rules.next_position(ruleset_id),
                **data.model_dump(),
            )
        )
        await _touch(session, ruleset)
    return rule


async def _rule_of(session: AsyncSession, ruleset_id: uuid.UUID, rule_id: uuid.UUID) -> RuleRow:
    rule = await RuleRepository(session).get(rule_id, for_update=True)
    if rule is None or rule.ruleset_id != ruleset_id:
        raise NotFound("rule", rule_id)
    return rule


async def get_rule(session: AsyncSession, *, ruleset_id: uuid.UUID, rule_id: uuid.UUID) -> RuleRow:
    async with transaction(session, resource="rule"):
        await RuleSetRepository(session).get_or_raise(ruleset_id)
        return await _rule_of(session, ruleset_id, rule_id)


async def list_rules(
    session: AsyncSession, *, ruleset_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[Any]:
    async with transaction(session, resource="rule"):
        await RuleSetRepository(session).get_or_raise(ruleset_id)
        return await RuleRepository(session).page(ruleset_id=ruleset_id, limit=limit, cursor=cursor)


async def update_rule(
    session: AsyncSession,
    *,
    ruleset_id: uuid.UUID,
    rule_id: uuid.UUID,
    data: RuleUpdate,
    expected: ExpectedVersion | None,
) -> RuleRow:
    if data.condition is not None:
        check_rule_condition(data.condition)
    changes = data.provided()
    async with transaction(session, resource="rule"):
        ruleset = await _draft(session, ruleset_id)
        rule = await _rule_of(session, ruleset_id, rule_id)
        check_expected(expected, "rule", rule.version)
        await _check_references(
            session, territory_id=changes.get("territory_id"), owner_id=changes.get("owner_id")
        )
        await RuleRepository(session).update(rule, changes)
        await _touch(session, ruleset)
    return rule


async def delete_rule(
    session: AsyncSession,
    *,
    ruleset_id: uuid.UUID,
    rule_id: uuid.UUID,
    expected: ExpectedVersion | None,
) -> None:
    async with transaction(session, resource="rule"):
        ruleset = await _draft(session, ruleset_id)
        rule = await _rule_of(session, ruleset_id, rule_id)
        check_expected(expected, "rule", rule.version)
        await RuleRepository(session).delete(rule)
        await _touch(session, ruleset)


async def validate_ruleset(session: AsyncSession, *, ruleset_id: uuid.UUID) -> ValidationReport:
    async with transaction(session, resource="rule set"):
        ruleset = await RuleSetRepository(session).get_or_raise(ruleset_id)
        return await report_for(session, ruleset)


async def report_for(session: AsyncSession, ruleset: RuleSet) -> ValidationReport:
    """The static checks of the rule set's rules, and what they target in the database."""
    rows = await RuleRepository(session).of_ruleset(ruleset.id)
    spec = spec_of(ruleset, rows)
    issues = [
        ValidationIssue(
            severity=(
                "error"
                if finding.code == "overlap" and ruleset.tie_policy is TiePolicy.REJECT
                else "warning"
            ),
            code=finding.code,
            message=finding.message,
            rule_ids=list(finding.rule_ids),
            example=finding.example,
        )
        for finding in analyse(spec)
    ]
    members = await MemberRepository(session).of_territories({r.territory_id for r in rows})
    owners = {
        o.id: o
        for o in await OwnerRepository(session).by_ids(
            {m.owner_id for m in members} | {r.owner_id for r in rows if r.owner_id}
        )
    }
    staffed = {m.territory_id for m in members if owners[m.owner_id].active}
    for row in rows:
        if row.owner_id is not None and not owners[row.owner_id].active:
            issues.append(
                ValidationIssue(
                    severity="warning",
                    code="inactive_owner",
                    message=f"rule {row.name!r} names an inactive owner; the strategy will pick",
                    rule_ids=[row.id],
                )
            )
        if row.owner_id is None and row.territory_id not in staffed:
            issues.append(
                ValidationIssue(
                    severity="warning",
                    code="no_active_members",
                    message=f"rule {row.name!r} targets a territory without active members; "
                    "its customers will wait in the pool",
                    rule_ids=[row.id],
                )
            )
    return ValidationReport(valid=all(i.severity != "error" for i in issues), issues=issues)
