"""Stateless resolution (`POST /v1/resolve`): who would own a customer with these facts?

Nothing is stored and nothing is written. Every call resolves with the rule set active when it
was asked: that is read from the database for every call, in rounds that concurrent calls share
(see `coalescing`), so an activation holds from the next call on, on every replica. The
territories involved, their members and their load are reused for `ttl` seconds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from territory_service.coalescing import Coalescer
from territory_service.ownership.resolver import directory_for
from territory_service.ownership.schemas import Decision
from territory_service.ownership.service import NoActiveRuleSet, decision_out
from territory_service.rules import resolution
from territory_service.rules.directory import Directory, Load
from territory_service.rules.facts import facts_of
from territory_service.rulesets.models import RuleSet, RuleSetState
from territory_service.rulesets.service import compiled_version
from territory_service.transaction import reading, transaction

ACTIVE_VERSION = select(RuleSet.id, RuleSet.version).where(RuleSet.state == RuleSetState.ACTIVE)


class DirectoryCache:
    """Directories and loads for previews, each reused for `ttl` seconds. A preview may lag a
    membership or load change by that much; nothing that writes reads from here."""

    LIMIT = 256  # distinct sets of territories kept

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[frozenset[uuid.UUID], tuple[float, Directory, Load]] = {}

    async def get(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        territory_ids: Iterable[uuid.UUID],
    ) -> tuple[Directory, Load]:
        key = frozenset(territory_ids)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1], entry[2]
        async with session_factory() as session, transaction(session, resource="territory"):
            directory, load = await directory_for(session, key)
        if self.ttl > 0:
            if len(self._entries) >= self.LIMIT:
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) < self.LIMIT:
                self._entries[key] = (now + self.ttl, directory, load)
        return directory, load


class Previews:
    """One per application: made in its lifespan, as the rounds belong to its event loop."""

    def __init__(
        self,
        engine: AsyncEngine,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        ttl: float,
    ) -> None:
        self._engine = engine
        self._session_factory = session_factory
        self.directories = DirectoryCache(ttl)
        self.active_versions: Coalescer[None, tuple[uuid.UUID, int] | None] = Coalescer(
            self._active_version
        )

    async def _active_version(self, _: frozenset[None]) -> tuple[uuid.UUID, int] | None:
        async with reading(self._engine, resource="rule set") as connection:
            row = (await connection.execute(ACTIVE_VERSION)).first()
        return None if row is None else (row.id, row.version)

    async def resolve(self, customer: dict[str, Any]) -> Decision:
        active = await self.active_versions.read(None)
        if active is None:
            raise NoActiveRuleSet()
        ruleset = await compiled_version(self._session_factory, *active)
        facts = facts_of(customer)
        involved = {rule.territory_id for rule in ruleset.match(facts).top}
        directory, load = await self.directories.get(
            self._session_factory, involved | {ruleset.spec.default_territory_id}
        )
        # Not a stored customer: an id derived from the facts lets the strategies spread
        # previews as they spread customers (a stored one may get another member).
        pseudo_id = uuid.uuid5(
            uuid.NAMESPACE_OID, json.dumps(customer, sort_keys=True, default=str)
        )
        situation = resolution.Situation(customer_id=pseudo_id)
        decision = resolution.resolve(ruleset, facts, situation, directory, load)
        return decision_out(ruleset, facts, decision)
