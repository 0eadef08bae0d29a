"""Resolving the whole pool: the set-based path behind rule-set activation and simulation.

A run streams the customers in id order, chunk by chunk, reading only the facts its rule set
uses, and decides each one with the same `resolve` a single customer goes through. The
directory (every territory, member and owner), the load and the group roots' places are read
once and kept in memory; they move as customers move, so every customer sees what the ones
before it left, exactly as resolving them one by one in id order would.

Writing is set-based too: a chunk's changed rows go in one upsert that is a compare-and-set on
the ownership version (`ON CONFLICT ... DO UPDATE ... WHERE version = expected`), and their
events in one insert. A row that a concurrent writer changed in between is not overwritten;
the run reports it as lost and the caller resolves it again under a row lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, case, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from territory_service.customers.models import Customer
from territory_service.db import dialect_insert, fetch_rows, string_array, utcnow
from territory_service.logs import request_id_var
from territory_service.owners.repository import OwnerRepository
from territory_service.ownership.models import Ownership, OwnershipEvent, OwnershipSource
from territory_service.ownership.resolver import SOURCES, directory_for
from territory_service.rules.directory import Directory, Load
from territory_service.rules.facts import ATTRIBUTE_PREFIX, FIELDS
from territory_service.rules.resolution import (
    ConflictSignal,
    Decision,
    Settled,
    Situation,
    no_capacity,
    resolve_match,
    settled,
)
from territory_service.rules.ruleset import CompiledRuleSet
from territory_service.security.principal import Principal
from territory_service.territories.repository import TerritoryRepository

Place = tuple[uuid.UUID, uuid.UUID | None]  # (territory, owner); owner None: the pool
# A row read by `PoolRun.read`: customer id, territory, owner, locked, version, then the facts.
_FIRST_FACT = 5

_OWNERSHIPS: Table = Ownership.__table__  # type: ignore[assignment]
_EVENTS: Table = OwnershipEvent.__table__  # type: ignore[assignment]
# Rows per statement when writing; keeps each statement under both drivers' parameter limits.
WRITE_BATCH = 1000
# Customers decided between two turns of the event loop: a few milliseconds of work.
SLICE = 1000


@dataclass(frozen=True, slots=True)
class Change:
    """A customer whose ownership the run changes."""

    customer_id: uuid.UUID
    version: int | None  # the current row's version; None: the customer has no row yet
    before: Place | None
    decision: Decision

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

    def absorb(self, other: Decided) -> None:
        """Add another outcome that follows this one."""
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
    ) -> None:
        self.ruleset = ruleset
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
    async def prepare(cls, session: AsyncSession, ruleset: CompiledRuleSet) -> PoolRun:
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
        for start in range(0, len(wanted), WRITE_BATCH):
            rows = await session.execute(
                select(Ownership.customer_id, Ownership.territory_id, Ownership.owner_id).where(
                    Ownership.customer_id.in_(wanted[start : start + WRITE_BATCH])
                )
            )
            root_places.update((c, (t, o)) for c, t, o in rows)
        return cls(ruleset, directory, load, roots, root_places)

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
        return await fetch_rows(connection, statement)

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
                change = Change(customer_id, row[4], before, decision)
                changes.append(change)
                self._move(customer_id, before, after)
            else:
                stayed[after] += 1
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
    Callers hold `collector_paused()` around the pass.

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


_pauses = 0  # passes that hold the collector paused


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a pass over the pool runs (passes may overlap).

    A pass allocates millions of short-lived acyclic objects (rows, decisions, changes). The
    collector would find none of them garbage, yet walks the ones alive again and again: a
    quarter of a re-division's time. Reference counting still frees them as they go; cycles
    made meanwhile elsewhere in the process are collected once the last pass ends."""
    global _pauses
    if _pauses == 0 and not gc.isenabled():  # paused by someone else: theirs to resume
        yield
        return
    _pauses += 1
    gc.disable()
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0:
            gc.enable()


def _root_of(customer_id: uuid.UUID, parents: dict[uuid.UUID, uuid.UUID]) -> uuid.UUID:
    """The top of a customer's parent chain (a cycle stops where it closes)."""
    root, seen = parents[customer_id], {customer_id}
    while root in parents and root not in seen:
        seen.add(root)
        root = parents[root]
    return root


async def write_changes(
    session: AsyncSession,
    changes: Sequence[Change],
    *,
    actor: Principal | None,
    reason: str,
) -> list[Change]:
    """Write the changes with their events in the caller's transaction; return the ones lost to
    a concurrent writer (their rows are untouched).

    The run decided with the owners it read when it began. The owners receiving customers are
    read again here under key-share locks, as every writer that gives owners customers does
    (see `OwnerRepository.locked`): a change to an owner deactivated since is
    lost too, and no deactivation can slip in before this transaction commits."""
    if not changes:
        return []
    available = await _lock_active_owners(
        session, {c.decision.owner_id for c in changes if c.decision.owner_id is not None}
    )
    writable = [
        c for c in changes if c.decision.owner_id is None or c.decision.owner_id in available
    ]
    lost = {c.customer_id for c in changes} - {c.customer_id for c in writable}
    if writable:
        connection = await session.connection()
        if connection.dialect.driver == "asyncpg":
            lost |= await _copy_and_upsert(connection, writable, actor=actor, reason=reason)
        else:
            lost |= await _upsert(session, writable, actor=actor, reason=reason)
    return [c for c in changes if c.customer_id in lost]


async def _lock_active_owners(session: AsyncSession, owner_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Those of the owners that are active, key-share locked in id order."""
    return {owner.id for owner in await OwnerRepository(session).locked(owner_ids) if owner.active}


async def _upsert(
    session: AsyncSession, changes: Sequence[Change], *, actor: Principal | None, reason: str
) -> set[uuid.UUID]:
    """The portable writer: a multi-row upsert, then the events of the rows it wrote. Returns
    the customers whose rows it did not write."""
    now = utcnow()
    insert = dialect_insert(session.get_bind().dialect.name, _OWNERSHIPS)
    new = insert.excluded
    upsert = insert.on_conflict_do_update(
        index_elements=[_OWNERSHIPS.c.customer_id],
        set_={name: new[name] for name in _WRITTEN} | {"held_since": _kept_clock(new)},
        where=_OWNERSHIPS.c.version == new.version - 1,
    ).returning(_OWNERSHIPS.c.customer_id)
    written: set[uuid.UUID] = set()
    for start in range(0, len(changes), WRITE_BATCH):
        batch = changes[start : start + WRITE_BATCH]
        result = await session.execute(upsert, [_ownership_row(c, now) for c in batch])
        written.update(result.scalars())
    events = [
        _event_row(c, now, actor=actor, reason=reason) for c in changes if c.customer_id in written
    ]
    if events:
        await session.execute(_EVENTS.insert(), events)
    return {c.customer_id for c in changes} - written


_WRITTEN = (
    "territory_id", "owner_id", "source", "rule_id", "ruleset_version", "locked", "version",
    "assigned_at",
)  # fmt: skip


def _kept_clock(new: Any) -> Any:
    """`held_since` on update, as `OwnershipRepository.assign` keeps it: none in the pool, the
    old one for the same owner or a group move between owners, else the new one (now)."""
    old = _OWNERSHIPS.c
    keeps = and_(
        old.owner_id.is_not(None),
        or_(old.owner_id == new.owner_id, new.source == OwnershipSource.GROUP.value),
    )
    return case((new.owner_id.is_(None), None), (keeps, old.held_since), else_=new.held_since)


# PostgreSQL: the changes go to a session-local staging table by COPY, then one statement
# upserts the rows (compare-and-set on the version), inserts the events of those it wrote and
# answers the customers it did not write (usually none, so nothing comes back).
_STAGING = "ownership_changes"
_STAGING_COLUMNS = (
    "customer_id", "version", "from_territory_id", "from_owner_id", "territory_id", "owner_id",
    "source", "rule_id", "ruleset_version",
)  # fmt: skip
_CREATE_STAGING = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} (
    customer_id uuid, version integer, from_territory_id uuid, from_owner_id uuid,
    territory_id uuid, owner_id uuid, source varchar(16), rule_id uuid, ruleset_version integer
) ON COMMIT DELETE ROWS
"""
_APPLY_STAGING = f"""
WITH written AS (
    INSERT INTO ownerships AS o (customer_id, territory_id, owner_id, source, rule_id,
        ruleset_version, locked, version, assigned_at, held_since)
    SELECT customer_id, territory_id, owner_id, source, rule_id, ruleset_version, false,
        version, $1, CASE WHEN owner_id IS NULL THEN NULL ELSE $1::timestamptz END
    FROM {_STAGING}
    ON CONFLICT (customer_id) DO UPDATE SET
        {", ".join(f"{name} = excluded.{name}" for name in _WRITTEN)},
        held_since = CASE WHEN excluded.owner_id IS NULL THEN NULL
            WHEN o.owner_id IS NOT NULL
                AND (o.owner_id = excluded.owner_id OR excluded.source = 'group')
            THEN o.held_since ELSE excluded.held_since END
    WHERE o.version = excluded.version - 1
    RETURNING o.customer_id
), events AS (
    INSERT INTO ownership_events (customer_id, version, from_territory_id, from_owner_id,
        territory_id, owner_id, source, rule_id, ruleset_version, locked, reason, actor_key_id,
        acting_owner_id, request_id, created_at)
    SELECT c.customer_id, c.version, c.from_territory_id, c.from_owner_id, c.territory_id,
        c.owner_id, c.source, c.rule_id, c.ruleset_version, false, $2, $3, $4, $5, $1
    FROM {_STAGING} AS c JOIN written AS w ON w.customer_id = c.customer_id
    ORDER BY c.customer_id
)
SELECT c.customer_id FROM {_STAGING} AS c
WHERE NOT EXISTS (SELECT FROM written AS w WHERE w.customer_id = c.customer_id)
"""


async def _copy_and_upsert(
    connection: AsyncConnection,
    changes: Sequence[Change],
    *,
    actor: Principal | None,
    reason: str,
) -> set[uuid.UUID]:
    # Through SQLAlchemy first, so the transaction has begun before the driver is used directly.
    await connection.execute(text(_CREATE_STAGING))
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    records = [
        (
            c.customer_id,
            (c.version or 0) + 1,
            *(c.before or (None, None)),
            c.decision.territory_id,
            c.decision.owner_id,
            SOURCES[c.decision.source].value,
            c.decision.rule_id,
            c.decision.ruleset_version,
        )
        for c in changes
    ]
    await raw.copy_records_to_table(_STAGING, records=records, columns=_STAGING_COLUMNS)
    rows = await raw.fetch(
        _APPLY_STAGING,
        utcnow(),
        reason,
        actor.key_id if actor else None,
        actor.acting_owner.id if actor and actor.acting_owner else None,
        request_id_var.get(),
    )
    return {row[0] for row in rows}


def _ownership_row(change: Change, now: object) -> dict[str, Any]:
    decision = change.decision
    return {
        "customer_id": change.customer_id,
        "territory_id": decision.territory_id,
        "owner_id": decision.owner_id,
        "source": SOURCES[decision.source],
        "rule_id": decision.rule_id,
        "ruleset_version": decision.ruleset_version,
        "locked": False,
        "version": (change.version or 0) + 1,
        "assigned_at": now,
        "held_since": None if decision.owner_id is None else now,
    }


def _event_row(
    change: Change, now: object, *, actor: Principal | None, reason: str
) -> dict[str, Any]:
    decision = change.decision
    before = change.before or (None, None)
    return {
        "customer_id": change.customer_id,
        "version": (change.version or 0) + 1,
        "from_territory_id": before[0],
        "from_owner_id": before[1],
        "territory_id": decision.territory_id,
        "owner_id": decision.owner_id,
        "source": SOURCES[decision.source],
        "rule_id": decision.rule_id,
        "ruleset_version": decision.ruleset_version,
        "locked": False,
        "reason": reason,
        "actor_key_id": actor.key_id if actor else None,
        "acting_owner_id": actor.acting_owner.id if actor and actor.acting_owner else None,
        "request_id": request_id_var.get(),
        "created_at": now,
    }
