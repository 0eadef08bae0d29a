"""Deciding the whole pool: the set-based path behind rule-set activation and simulation.

A run streams the customers in id order, chunk by chunk, reading only the facts its rule set
uses, and decides each one with the same `resolve` a single customer goes through. The
directory (every territory, member and owner), the load and the group roots' places are read
once and kept in memory; they move as customers move, so every customer sees what the ones
before it left, exactly as resolving them one by one in id order would.

What a run decides to change is written by `ownership/pool_writes.py`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from territory_service.customers.models import Customer
from territory_service.db import fetch_rows, string_array
from territory_service.engine.directory import Directory, Load
from territory_service.engine.facts import ATTRIBUTE_PREFIX, FIELDS
from territory_service.engine.resolution import (
    ConflictSignal,
    Decision,
    Settled,
    Situation,
    no_capacity,
    resolve_match,
    settled,
)
from territory_service.engine.ruleset import CompiledRuleSet
from territory_service.ownership.changes import SOURCES, Held
from territory_service.ownership.models import Ownership
from territory_service.ownership.resolver import directory_for
from territory_service.territories.repository import TerritoryRepository

Place = tuple[uuid.UUID, uuid.UUID | None]  # (territory, owner); owner None: the pool
# A row read by `PoolRun.read`: customer id, territory, owner, locked, version, held since,
# then the facts.
_FIRST_FACT = 6

# Group roots looked up per statement; keeps each statement under both drivers' parameter limits.
ROOTS_BATCH = 1000
# Customers decided between two turns of the event loop: a few milliseconds of work.
SLICE = 1000


@dataclass(frozen=True, slots=True)
class Change:
    """A customer whose ownership the run changes."""

    customer_id: uuid.UUID
    held: Held | None  # the row as the run read it; None: the customer has no row yet
    decision: Decision

    @property
    def before(self) -> Place | None:
        held = self.held
        return None if held is None else (held.territory_id, held.owner_id)

    @property
    def after(self) -> Place:
        return (self.decision.territory_id, self.decision.owner_id)


@dataclass
class Decided:
    """The outcome of deciding some customers: how many, how many stay at each place, what
    changes, the conflicts raised."""

    customers: int = 0
    stayed: Counter[Place] = field(default_factory=Counter)
    changes: list[Change] = field(default_factory=list)
    signals: list[ConflictSignal] = field(default_factory=list)
    first: uuid.UUID | None = None  # the first and last customers decided, in id order
    last: uuid.UUID | None = None

    def absorb(self, other: Decided) -> None:
        """Add another outcome that follows this one."""
        self.first = self.first or other.first
        self.last = other.last or self.last
        self.customers += other.customers
        self.stayed.update(other.stayed)
        self.changes.extend(other.changes)
        self.signals.extend(other.signals)


class PoolRun:
    """The state one pass over the pool carries from chunk to chunk."""

    def __init__(
        self,
        ruleset: CompiledRuleSet,
        directory: Directory,
        load: Load,
        roots: dict[uuid.UUID, uuid.UUID],
        root_places: dict[uuid.UUID, Place],
        undone: dict[uuid.UUID, Held | None] | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.undone = undone or {}  # see `prepare`
        self.directory = directory
        self.load = load
        self.roots = roots  # subsidiary -> its group's root
        self.root_places = root_places  # the roots' current places, moved as they move
        self._group_roots = set(roots.values())
        self._unbounded = directory.unbounded()
        self._closed = directory.closed()
        fields = ruleset.fields
        self._columns = tuple(sorted(f for f in fields if f in FIELDS and f != "tags"))
        self._tags = "tags" in fields
        self._attributes = any(f.startswith(ATTRIBUTE_PREFIX) for f in fields)
        positions = {name: _FIRST_FACT + i for i, name in enumerate(self._columns)}
        if self._tags:
            positions["tags"] = _FIRST_FACT + len(self._columns)
        self._row_match = ruleset.row_matcher(positions)

    @classmethod
    async def prepare(
        cls,
        session: AsyncSession,
        ruleset: CompiledRuleSet,
        *,
        undo: dict[uuid.UUID, tuple[Held | None, Place]] | None = None,
    ) -> PoolRun:
        """Read what a pass starts from. `undo` names customers whose rows an earlier
        attempt of the same pass already changed (`customer -> (row before or None, place
        after)`): the pass sees them as they were, so it decides as the first attempt did."""
        named = {rule.owner_id for rule in ruleset.rules if rule.owner_id is not None}
        directory, load = await directory_for(
            session, await TerritoryRepository(session).ids(), named_owner_ids=named
        )
        children = await session.execute(
            select(Customer.id, Customer.parent_id).where(Customer.parent_id.is_not(None))
        )
        parents: dict[uuid.UUID, uuid.UUID] = {
            child: parent for child, parent in children if parent is not None
        }
        roots = {child: _root_of(child, parents) for child in parents}
        root_places: dict[uuid.UUID, Place] = {}
        wanted = sorted(set(roots.values()))
        for start in range(0, len(wanted), ROOTS_BATCH):
            rows = await session.execute(
                select(Ownership.customer_id, Ownership.territory_id, Ownership.owner_id).where(
                    Ownership.customer_id.in_(wanted[start : start + ROOTS_BATCH])
                )
            )
            root_places.update((c, (t, o)) for c, t, o in rows)
        undone: dict[uuid.UUID, Held | None] = {}
        for customer_id, (held, after) in (undo or {}).items():
            before = None if held is None else (held.territory_id, held.owner_id)
            load.move(after, before)
            if before is None:
                root_places.pop(customer_id, None)
            elif customer_id in root_places:
                root_places[customer_id] = before
            undone[customer_id] = held
        return cls(ruleset, directory, load, roots, root_places, undone)

    async def read(
        self, session: AsyncSession, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[Sequence[Any]]:
        """The next customers in id order with their ownership and the facts the rules read."""
        connection = await session.connection()
        facts = [getattr(Customer, name) for name in self._columns]
        if self._tags:
            facts.append(string_array(Customer.tags.expression, connection.dialect.name))
        if self._attributes:
            facts.append(Customer.attributes)
        statement = (
            select(
                Customer.id,
                Ownership.territory_id,
                Ownership.owner_id,
                Ownership.locked,
                Ownership.version,
                Ownership.held_since,
                *facts,
            )
            .order_by(Customer.id)
            .limit(limit)
        )
        if after is None:
            statement = statement.outerjoin(Ownership, Ownership.customer_id == Customer.id)
        else:
            # The bound on both sides lets the planner start both index scans at `after`.
            statement = statement.outerjoin(
                Ownership, (Ownership.customer_id == Customer.id) & (Ownership.customer_id > after)
            ).where(Customer.id > after)
        rows = await fetch_rows(connection, statement)
        if not self.undone:
            return rows
        undone = self.undone
        return [row if row[0] not in undone else _as_before(row, undone[row[0]]) for row in rows]

    def decide(self, rows: Sequence[Sequence[Any]], into: Decided) -> None:
        """Resolve customers read by `read` into `into`, moving the load as customers move.
        A customer the engine knows stays (`settled`) is counted without a decision."""
        stayed, changes, signals = into.stayed, into.changes, into.signals
        ruleset, directory, load = self.ruleset, self.directory, self.load
        row_match, unbounded, roots = self._row_match, self._unbounded, self.roots
        closed = self._closed
        for row in rows:
            customer_id, territory_id, owner_id, locked = row[0], row[1], row[2], row[3]
            match = row_match(row)
            if match is None:
                match = ruleset.match(self.facts(row))
            stays = settled(
                match,
                territory_id,
                owner_id,
                locked=bool(locked),
                in_group=customer_id in roots,
                unbounded=unbounded,
                closed=closed,
            )
            if stays is not None:
                if stays is Settled.CLOSED_POOL:
                    signals.append(no_capacity(customer_id, territory_id))
                stayed[(territory_id, owner_id)] += 1
                continue
            situation = self._situation(customer_id, territory_id, owner_id, bool(locked))
            decision = resolve_match(ruleset, match, situation, directory, load)
            signals.extend(decision.conflicts)
            before = None if territory_id is None else (territory_id, owner_id)
            after = (decision.territory_id, decision.owner_id)
            if decision.source in SOURCES and (before is None or before != after):
                held = None if before is None else Held(row[4], territory_id, owner_id, row[5])
                change = Change(customer_id, held, decision)
                changes.append(change)
                self._move(customer_id, before, after)
            else:
                stayed[after] += 1
        if rows:
            into.first = into.first or rows[0][0]
            into.last = rows[-1][0]
        into.customers += len(rows)

    def facts(self, row: Sequence[Any]) -> dict[str, Any]:
        """The facts of a row read by `read`, as rules see them."""
        facts: dict[str, Any] = dict(zip(self._columns, row[_FIRST_FACT:], strict=False))
        position = _FIRST_FACT + len(self._columns)
        if self._tags:
            facts["tags"] = frozenset(row[position] or ())
            position += 1
        if self._attributes:
            for key, value in (row[position] or {}).items():
                facts[ATTRIBUTE_PREFIX + key] = value
        return facts

    def undo(self, changes: Sequence[Change]) -> None:
        """Take back the moves of changes that were not written."""
        for change in reversed(changes):
            self._move(change.customer_id, change.after, change.before)

    def _move(self, customer_id: uuid.UUID, old: Place | None, new: Place | None) -> None:
        self.load.move(old, new)
        if customer_id in self._group_roots:
            if new is None:
                self.root_places.pop(customer_id, None)
            else:
                self.root_places[customer_id] = new

    def _situation(
        self,
        customer_id: uuid.UUID,
        territory_id: uuid.UUID | None,
        owner_id: uuid.UUID | None,
        locked: bool,
    ) -> Situation:
        root = self.roots.get(customer_id)
        root_place = None if root is None else self.root_places.get(root)
        if root_place is None:
            return Situation(customer_id, territory_id, owner_id, locked)
        return Situation(
            customer_id, territory_id, owner_id, locked, root, root_place[0], root_place[1]
        )


async def decide_all(
    session_factory: async_sessionmaker[AsyncSession], run: PoolRun, *, chunk: int
) -> AsyncIterator[Decided]:
    """Decide the whole pool chunk by chunk; the next chunk is read while this one is decided.
    Callers hold `heap.collector_paused()` around the pass.

    Deciding runs on the event loop in slices of `SLICE` customers, with the loop free between
    slices to serve requests and move the reads and writes along."""

    async def read(after: uuid.UUID | None) -> Sequence[Sequence[Any]]:
        async with session_factory() as session, session.begin():
            return await run.read(session, after=after, limit=chunk)

    pending = asyncio.create_task(read(None))
    try:
        while rows := await pending:
            pending = asyncio.create_task(read(rows[-1][0]))
            decided = Decided()
            for start in range(0, len(rows), SLICE):
                await asyncio.sleep(0)
                run.decide(rows[start : start + SLICE], decided)
            yield decided
    finally:
        pending.cancel()


def _as_before(row: Sequence[Any], held: Held | None) -> tuple[Any, ...]:
    """A row read by `PoolRun.read` with its ownership as it was (`held`; None: no row)."""
    if held is None:
        return (row[0], None, None, None, None, None, *row[_FIRST_FACT:])
    place = (held.territory_id, held.owner_id, False, held.version, held.held_since)
    return (row[0], *place, *row[_FIRST_FACT:])


def _root_of(customer_id: uuid.UUID, parents: dict[uuid.UUID, uuid.UUID]) -> uuid.UUID:
    """The top of a customer's parent chain (a cycle stops where it closes)."""
    root, seen = parents[customer_id], {customer_id}
    while root in parents and root not in seen:
        seen.add(root)
        root = parents[root]
    return root
