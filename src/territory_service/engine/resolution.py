"""Resolution: one customer's facts and situation in, its one owner and the reasons out.

The steps of DESIGN §3, in order: a lock holds; a subsidiary follows its group's root; else the
winning rule (ties by the rule set's tie policy; no match: the default territory's pool); then
the owner inside the territory: the rule's named owner, else the current owner if still a
member with room (stability first), else the territory's strategy, else the pool.
"""

from __future__ import annotations

import enum
import functools
import uuid
import weakref
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from territory_service.engine.directory import Directory, Load, Strategy
from territory_service.engine.facts import Facts
from territory_service.engine.ruleset import CompiledRuleSet, Match, Rule, TiePolicy
from territory_service.engine.strategies import choose_owner


class Source(enum.StrEnum):
    RULE = "rule"
    GROUP = "group"
    KEPT = "kept"  # a lock held: the ownership does not change


class ConflictKind(enum.StrEnum):
    RULE_TIE = "rule_tie"
    DUPLICATE_CUSTOMER = "duplicate_customer"
    GROUP_SPLIT = "group_split"
    LOCKED_DRIFT = "locked_drift"
    NO_CAPACITY = "no_capacity"
    NO_MATCH = "no_match"
    CLAIM_RACE = "claim_race"


class Situation(NamedTuple):
    """Where the customer stands now, and where its group's root stands. (A named tuple: bulk
    runs make millions, and a frozen dataclass is several times slower to build.)"""

    customer_id: uuid.UUID
    territory_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    locked: bool = False
    # The group root's ownership when the customer is a subsidiary and inherits (DESIGN §3.2).
    group_root_id: uuid.UUID | None = None
    group_territory_id: uuid.UUID | None = None
    group_owner_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ConflictSignal:
    """Something a person should look at. `cause` identifies it, so a repeat updates the same
    open conflict instead of adding one."""

    kind: ConflictKind
    cause: tuple[str, ...]
    customer_id: uuid.UUID
    territory_id: uuid.UUID | None = None
    rule_ids: tuple[uuid.UUID, ...] = ()
    owner_ids: tuple[uuid.UUID, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    step: str  # lock | group | rules | tie | no_match | named_owner | stability | strategy | pool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


# Steps whose text never varies, made once (bulk runs take millions of decisions).
_LOCKED = Step("lock", "ownership was set by a person and is locked; rules do not move it")
_NO_MATCH = Step("no_match", "no rule matched: the default territory's pool")
_TIE_TO_POOL = Step("tie", "rules tie with different targets: the default pool (policy pool)")
_NAMED_OWNER = Step("named_owner", "the rule names the owner")
_NAMED_OWNER_INACTIVE = Step(
    "named_owner", "the rule's named owner is inactive; the strategy picks"
)
_STABLE = Step("stability", "the current owner is still a member with room")
_TO_POOL = Step("pool", "no active member with room: the territory's pool")


class Decision(NamedTuple):
    territory_id: uuid.UUID
    owner_id: uuid.UUID | None
    source: Source
    rule_id: uuid.UUID | None
    ruleset_version: int
    trace: tuple[Step, ...]
    conflicts: tuple[ConflictSignal, ...]

    def changes(self, situation: Situation) -> bool:
        return (self.territory_id, self.owner_id) != (situation.territory_id, situation.owner_id)


def resolve(
    ruleset: CompiledRuleSet,
    facts: Facts,
    situation: Situation,
    directory: Directory,
    load: Load,
) -> Decision:
    """Decide one customer's owner. Pure: reads its arguments, changes nothing."""
    return resolve_match(ruleset, ruleset.match(facts), situation, directory, load)


def resolve_match(
    ruleset: CompiledRuleSet,
    match: Match,
    situation: Situation,
    directory: Directory,
    load: Load,
) -> Decision:
    """`resolve` for a customer whose facts the rule set has matched already."""
    trace: list[Step] = []
    conflicts: list[ConflictSignal] = []
    version = ruleset.spec.version
    territory_id, named_owner, rule = _territory_by_rules(
        ruleset, match, situation, trace, conflicts
    )

    if situation.locked and situation.territory_id is not None:
        trace.insert(0, _LOCKED)
        kept: list[ConflictSignal] = []
        if (territory_id, named_owner or situation.owner_id) != (
            situation.territory_id,
            situation.owner_id,
        ):
            kept.append(_drift(situation, territory_id, rule, version))
        in_group = situation.group_root_id is not None and situation.group_territory_id is not None
        if in_group and situation.owner_id != situation.group_owner_id:
            kept.append(group_split(situation))
        return Decision(
            situation.territory_id,
            situation.owner_id,
            Source.KEPT,
            None,
            version,
            tuple(trace),
            tuple(kept),
        )
    if situation.group_root_id is not None and situation.group_territory_id is not None:
        trace.insert(
            0,
            Step(
                "group",
                "a subsidiary follows its group company's ownership",
                {"group_root_id": str(situation.group_root_id)},
            ),
        )
        return Decision(
            situation.group_territory_id,
            situation.group_owner_id,
            Source.GROUP,
            None,
            version,
            tuple(trace),
            (),
        )
    # No rule, or a tie sent to the pool: the default territory's pool, no owner to choose.
    owner_id = (
        None
        if rule is None
        else owner_in_territory(
            territory_id, named_owner, situation, directory, load, trace, conflicts
        )
    )
    return Decision(
        territory_id,
        owner_id,
        Source.RULE,
        rule.id if rule else None,
        version,
        tuple(trace),
        tuple(conflicts),
    )


def _territory_by_rules(
    ruleset: CompiledRuleSet,
    match: Match,
    situation: Situation,
    trace: list[Step],
    conflicts: list[ConflictSignal],
) -> tuple[uuid.UUID, uuid.UUID | None, Rule | None]:
    spec = ruleset.spec
    if not match.top:
        trace.append(_NO_MATCH)
        conflicts.append(
            ConflictSignal(
                ConflictKind.NO_MATCH,
                ("ruleset", str(spec.version)),
                situation.customer_id,
                territory_id=spec.default_territory_id,
            )
        )
        return spec.default_territory_id, None, None
    winner = match.top[0]
    trace.append(_win_step(ruleset, match))
    if not match.is_tie:
        return winner.territory_id, winner.owner_id, winner
    tied = tuple(sorted({r.id for r in match.top}, key=str))
    conflicts.append(
        ConflictSignal(
            ConflictKind.RULE_TIE,
            ("rules", *map(str, tied)),
            situation.customer_id,
            territory_id=winner.territory_id,
            rule_ids=tied,
            details={"priority": winner.priority, "tie_policy": spec.tie_policy.value},
        )
    )
    if spec.tie_policy is TiePolicy.POOL:
        trace.append(_TIE_TO_POOL)
        return spec.default_territory_id, None, None
    trace.append(Step("tie", f"rules tie; the earliest created, {winner.name!r}, wins"))
    return winner.territory_id, winner.owner_id, winner


def owner_in_territory(
    territory_id: uuid.UUID,
    named_owner: uuid.UUID | None,
    situation: Situation,
    directory: Directory,
    load: Load,
    trace: list[Step],
    conflicts: list[ConflictSignal],
) -> uuid.UUID | None:
    """The owner inside the territory (DESIGN §3.5): a named active owner, else the current one
    while they have room, else the strategy's pick among members with room, else None (the
    pool, `no_capacity` logged). Appends its steps to `trace` and signals to `conflicts`."""
    if named_owner is not None:
        owner = directory.owners.get(named_owner)
        if owner is not None and owner.active:
            trace.append(_NAMED_OWNER)
            return named_owner
        trace.append(_NAMED_OWNER_INACTIVE)
    territory = directory.territories.get(territory_id)
    members = territory.members if territory else ()
    stays = situation.territory_id == territory_id and situation.owner_id is not None
    if stays:
        member = directory.member(territory_id, situation.owner_id)  # type: ignore[arg-type]
        if member is not None and directory.has_room(territory_id, member, load, holds_it=True):
            trace.append(_STABLE)
            return situation.owner_id
    candidates = [m for m in members if directory.has_room(territory_id, m, load)]
    if territory is None or not candidates:
        trace.append(_TO_POOL)
        conflicts.append(no_capacity(situation.customer_id, territory_id))
        return None
    chosen = choose_owner(territory.strategy, situation.customer_id, territory_id, candidates, load)
    trace.append(_strategy_step(territory.strategy, len(candidates), chosen.owner_id))
    return chosen.owner_id


@functools.lru_cache(maxsize=4096)
def _strategy_step(strategy: Strategy, candidates: int, owner_id: uuid.UUID) -> Step:
    """The `strategy` step, made once per strategy, number of candidates and owner (bulk runs
    take hundreds of thousands of such decisions)."""
    return Step(
        "strategy",
        f"{strategy} picked among {candidates} member(s) with room",
        {"owner_id": str(owner_id)},
    )


def _win_step(ruleset: CompiledRuleSet, match: Match) -> Step:
    """The `rules` step; a lone winner's is made once per rule set and rule."""
    winner = match.top[0]
    steps = _WIN_STEPS.setdefault(ruleset, {}) if len(match.top) == 1 else None
    step = None if steps is None else steps.get(winner.id)
    if step is None:
        step = Step(
            "rules",
            f"rule {winner.name!r} wins at priority {winner.priority}",
            {"rule_id": str(winner.id), "tied": [str(r.id) for r in match.top[1:]]},
        )
        if steps is not None:
            steps[winner.id] = step
    return step


_WIN_STEPS: weakref.WeakKeyDictionary[CompiledRuleSet, dict[uuid.UUID, Step]] = (
    weakref.WeakKeyDictionary()
)


def _drift(
    situation: Situation, territory_id: uuid.UUID, rule: Rule | None, version: int
) -> ConflictSignal:
    return ConflictSignal(
        ConflictKind.LOCKED_DRIFT,
        ("customer", str(situation.customer_id), "ruleset", str(version)),
        situation.customer_id,
        territory_id=situation.territory_id,
        rule_ids=(rule.id,) if rule else (),
        details={"rules_territory_id": str(territory_id)},
    )


class Settled(enum.Enum):
    """How a customer stays where it is, decided without building a decision."""

    HELD = "held"  # with an owner whose room never depends on the load
    CLOSED_POOL = "closed pool"  # in the pool of a territory no member can take it from


def settled(
    match: Match,
    territory_id: uuid.UUID | None,
    owner_id: uuid.UUID | None,
    *,
    locked: bool,
    in_group: bool,
    unbounded: AbstractSet[tuple[uuid.UUID, uuid.UUID | None]],
    closed: AbstractSet[uuid.UUID],
) -> Settled | None:
    """Whether `resolve_match` would leave the customer where it is, known from the match and
    the directory alone (`unbounded` and `closed` are `Directory.unbounded()` and `.closed()`).
    Most customers of a re-division stay, so the set-based run asks this first.

    Only for a customer outside a group whose match is one untied rule, without a named
    owner, pointing at its own territory:
    - held by an owner whose room never depends on the load, it stays (stability first; when
      it is locked, the lock keeps it there and the rules agree: no drift);
    - unlocked in the pool of a territory where no member can take it, it stays there, and
      the decision would signal `no_capacity`.
    Anything else: None, resolve it."""
    top = match.top
    if (
        in_group
        or not top
        or top[0].territory_id != territory_id
        or top[0].owner_id is not None
        or (len(top) > 1 and match.is_tie)
    ):
        return None
    if (territory_id, owner_id) in unbounded:
        return Settled.HELD
    if owner_id is None and not locked and territory_id in closed:
        return Settled.CLOSED_POOL
    return None


def no_capacity(customer_id: uuid.UUID, territory_id: uuid.UUID) -> ConflictSignal:
    """A customer left in the territory's pool: no member has room."""
    return ConflictSignal(
        ConflictKind.NO_CAPACITY, ("territory", str(territory_id)), customer_id, territory_id
    )


def group_split(situation: Situation) -> ConflictSignal:
    owners = tuple(o for o in (situation.owner_id, situation.group_owner_id) if o is not None)
    return ConflictSignal(
        ConflictKind.GROUP_SPLIT,
        ("group", str(situation.group_root_id)),
        situation.customer_id,
        territory_id=situation.territory_id,
        owner_ids=owners,
        details={"group_root_id": str(situation.group_root_id)},
    )
