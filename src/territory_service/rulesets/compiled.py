"""Rule sets as the engine runs them: compiled once per (id, version) and kept.

Everything that decides ownership (resolution, previews, activation, simulation, assignment)
reads its rule set here. A draft's version moves on every edit and an active set never changes,
so an entry can never be stale, on any replica.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.engine.ruleset import CompiledRuleSet, Rule, RuleSetSpec
from territory_service.rulesets.condition_schemas import to_engine
from territory_service.rulesets.models import RuleRow, RuleSet
from territory_service.rulesets.repository import RuleRepository, RuleSetRepository
from territory_service.transaction import transaction


def spec_of(ruleset: RuleSet, rows: list[RuleRow]) -> RuleSetSpec:
    return RuleSetSpec(
        version=ruleset.number,
        rules=tuple(
            Rule(
                id=row.id,
                name=row.name,
                priority=row.priority,
                condition=to_engine(row.condition),
                territory_id=row.territory_id,
                owner_id=row.owner_id,
                enabled=row.enabled,
                position=row.position,
            )
            for row in rows
        ),
        default_territory_id=ruleset.default_territory_id,
        tie_policy=ruleset.tie_policy,
    )


# Compiled rule sets by (id, resource version), the few most recent.
_COMPILED: dict[tuple[uuid.UUID, int], CompiledRuleSet] = {}
_COMPILED_LIMIT = 8


async def compiled(session: AsyncSession, ruleset: RuleSet) -> CompiledRuleSet:
    key = (ruleset.id, ruleset.version)
    found = _COMPILED.get(key)
    if found is None:
        rows = await RuleRepository(session).of_ruleset(ruleset.id)
        found = CompiledRuleSet(spec_of(ruleset, rows))
        while len(_COMPILED) >= _COMPILED_LIMIT:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = found
    return found


async def compiled_version(
    session_factory: async_sessionmaker[AsyncSession], ruleset_id: uuid.UUID, version: int
) -> CompiledRuleSet:
    """The compiled rule set with this id and version, read and compiled on first use only."""
    found = _COMPILED.get((ruleset_id, version))
    if found is not None:
        return found
    async with session_factory() as session, transaction(session, resource="rule set"):
        return await compiled(session, await RuleSetRepository(session).get_or_raise(ruleset_id))
