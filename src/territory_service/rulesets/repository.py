from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from territory_service.pagination import Page, paginate
from territory_service.repository import Repository
from territory_service.rulesets.models import RuleRow, RuleSet, RuleSetState


class RuleSetRepository(Repository[RuleSet]):
    model = RuleSet
    resource_name = "rule set"

    async def page(
        self, *, state: RuleSetState | None, limit: int, cursor: str | None
    ) -> Page[RuleSet]:
        statement = self.select()
        if state is not None:
            statement = statement.where(RuleSet.state == state)
        return await paginate(self.session, statement, key=RuleSet.id, limit=limit, cursor=cursor)

    async def active(self, *, for_update: bool = False) -> RuleSet | None:
        statement = self.select().where(RuleSet.state == RuleSetState.ACTIVE)
        if for_update:
            statement = statement.with_for_update()
        found: RuleSet | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found

    async def next_number(self) -> int:
        current = (await self.session.execute(select(func.max(RuleSet.number)))).scalar_one()
        return int(current or 0) + 1


class RuleRepository(Repository[RuleRow]):
    model = RuleRow
    resource_name = "rule"

    async def of_ruleset(self, ruleset_id: uuid.UUID) -> list[RuleRow]:
        statement = self.select().where(RuleRow.ruleset_id == ruleset_id).order_by(RuleRow.position)
        return list((await self.session.execute(statement)).scalars())

    async def page(self, *, ruleset_id: uuid.UUID, limit: int, cursor: str | None) -> Page[Any]:
        statement = self.select().where(RuleRow.ruleset_id == ruleset_id)
        return await paginate(self.session, statement, key=RuleRow.id, limit=limit, cursor=cursor)

    async def next_position(self, ruleset_id: uuid.UUID) -> int:
        statement = select(func.max(RuleRow.position)).where(RuleRow.ruleset_id == ruleset_id)
        current = (await self.session.execute(statement)).scalar_one()
        return int(current if current is not None else -1) + 1
