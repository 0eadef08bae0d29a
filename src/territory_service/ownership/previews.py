"""Stateless resolution (`POST /v1/resolve`): who would own a customer with these facts?

Nothing is stored and nothing is written. Every call resolves with the rule set that was active
as it began, read with its API key (see `request_reads`), so an activation holds from the next
call on, on every replica. The territories involved, their members and their load are reused
for `ttl` seconds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.coalescing import Coalescer
from territory_service.customers.schemas import CustomerFacts
from territory_service.engine import resolution
from territory_service.engine.directory import Directory, Load
from territory_service.engine.facts import facts_of
from territory_service.ownership.resolver import directory_for
from territory_service.ownership.schemas import Decision
from territory_service.ownership.service import NoActiveRuleSet, decision_out
from territory_service.rulesets.compiled import compiled_version
from territory_service.transaction import transaction

_Entry = tuple[Directory, Load]
# The territories whose members a preview needs, and the owners its rules name.
_Key = tuple[frozenset[uuid.UUID], frozenset[uuid.UUID]]


class DirectoryCache:
    """Directories and loads for previews, each reused for `ttl` seconds. A preview may lag a
    membership or load change by that much; nothing that writes reads from here. The previews
    that find an entry missing or stale share one read of it."""

    LIMIT = 256  # distinct sets of territories kept

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], ttl: float) -> None:
        self.ttl = ttl
        self._session_factory = session_factory
        self._entries: dict[_Key, tuple[float, Directory, Load]] = {}
        self._reads: Coalescer[_Key, dict[_Key, _Entry]] = Coalescer(self._read)

    async def get(
        self, territory_ids: Iterable[uuid.UUID], named_owner_ids: Iterable[uuid.UUID] = ()
    ) -> _Entry:
        key = (frozenset(territory_ids), frozenset(named_owner_ids))
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1], entry[2]
        return (await self._reads.read(key))[key]

    async def _read(self, keys: frozenset[_Key]) -> dict[_Key, _Entry]:
        async with self._session_factory() as session, transaction(session, resource="territory"):
            found = {
                key: await directory_for(session, key[0], named_owner_ids=key[1]) for key in keys
            }
        now = time.monotonic()
        if self.ttl > 0:
            if len(self._entries) + len(found) > self.LIMIT:
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            for key, (directory, load) in found.items():
                if len(self._entries) < self.LIMIT:
                    self._entries[key] = (now + self.ttl, directory, load)
        return found


class Previews:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], *, ttl: float) -> None:
        self._session_factory = session_factory
        self.directories = DirectoryCache(session_factory, ttl)

    async def resolve(
        self, customer: CustomerFacts, *, active_ruleset: tuple[uuid.UUID, int] | None
    ) -> Decision:
        """`active_ruleset`: the id and version of the rule set active as the request began."""
        if active_ruleset is None:
            raise NoActiveRuleSet()
        ruleset = await compiled_version(self._session_factory, *active_ruleset)
        given = customer.model_dump()
        facts = facts_of(given)
        top = ruleset.match(facts).top
        involved = {rule.territory_id for rule in top} | {ruleset.spec.default_territory_id}
        named = {rule.owner_id for rule in top if rule.owner_id is not None}
        directory, load = await self.directories.get(involved, named)
        # Not a stored customer: an id derived from the facts lets the strategies spread
        # previews as they spread customers (a stored one may get another member).
        pseudo_id = uuid.uuid5(uuid.NAMESPACE_OID, _identity(customer, given))
        situation = resolution.Situation(customer_id=pseudo_id)
        decision = resolution.resolve(ruleset, facts, situation, directory, load)
        return decision_out(ruleset, facts, decision)


def _identity(customer: CustomerFacts, given: dict[str, Any]) -> str:
    """The same text for the same facts. pydantic writes fields in declaration order, which is
    fixed, but free-form attributes in the order they came; those are sorted (slower)."""
    if not given.get("attributes"):
        return customer.model_dump_json()
    return json.dumps(customer.model_dump(mode="json"), sort_keys=True)
