"""Resolution reads like DESIGN §3: locks hold, groups move together, the best rule wins,
stability first, then the territory's strategy, else the pool."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from territory_service.engine.conditions import Clause, Condition, Op, Predicate
from territory_service.engine.directory import (
    Directory,
    Load,
    Member,
    OwnerInfo,
    Strategy,
    TerritoryInfo,
)
from territory_service.engine.resolution import (
    ConflictKind,
    Settled,
    Situation,
    Source,
    resolve,
    settled,
)
from territory_service.engine.ruleset import CompiledRuleSet, Rule, RuleSetSpec, TiePolicy

EAST, SOUTH, DEFAULT = (uuid.UUID(int=i) for i in (1, 2, 3))
ZHANG, LI, WANG = (uuid.UUID(int=i) for i in (10, 11, 12))
CUSTOMER = uuid.UUID(int=99)


def where(field: str, op: Op, value: object = None) -> Condition:
    return Condition((Clause((Predicate(field, op, value),)),))


def rule(
    n: int,
    condition: Condition,
    territory: uuid.UUID,
    *,
    priority: int = 10,
    owner_id: uuid.UUID | None = None,
) -> Rule:
    return Rule(
        uuid.UUID(int=1000 + n),
        f"rule {n}",
        priority=priority,
        condition=condition,
        territory_id=territory,
        owner_id=owner_id,
        position=n,
    )


def ruleset(*rules: Rule, tie_policy: TiePolicy = TiePolicy.FIRST_CREATED) -> CompiledRuleSet:
    return CompiledRuleSet(RuleSetSpec(7, rules, DEFAULT, tie_policy))


def directory(
    *members: tuple[uuid.UUID, Member],
    strategy: Strategy = Strategy.ROUND_ROBIN,
    inactive: tuple[uuid.UUID, ...] = (),
) -> Directory:
    territories = {
        t: TerritoryInfo(t, strategy, tuple(m for tt, m in members if tt == t))
        for t in (EAST, SOUTH, DEFAULT)
    }
    owners = {o: OwnerInfo(o, active=o not in inactive) for o in (ZHANG, LI, WANG)}
    return Directory(territories, owners)


SHANGHAI = {"province": "上海", "tags": frozenset()}
STAFFED = directory((EAST, Member(ZHANG)), (SOUTH, Member(LI)))
EAST_RULE = rule(1, where("province", Op.IN, ["上海", "江苏"]), EAST)


def test_the_matching_rule_puts_the_customer_with_a_member_of_its_territory() -> None:
    decision = resolve(
        ruleset(EAST_RULE), SHANGHAI, Situation(CUSTOMER), directory((EAST, Member(ZHANG))), Load()
    )
    assert (decision.territory_id, decision.owner_id, decision.source) == (EAST, ZHANG, Source.RULE)
    assert decision.rule_id == EAST_RULE.id
    assert [step.step for step in decision.trace] == ["rules", "strategy"]


def test_lower_priority_number_wins() -> None:
    broad = rule(1, where("tags", Op.CONTAINS_NONE, ["x"]), SOUTH, priority=50)
    specific = rule(2, where("province", Op.EQ, "上海"), EAST, priority=5)
    decision = resolve(ruleset(broad, specific), SHANGHAI, Situation(CUSTOMER), STAFFED, Load())
    assert decision.territory_id == EAST


def test_no_match_goes_to_the_default_pool_and_is_a_coverage_gap() -> None:
    decision = resolve(
        ruleset(EAST_RULE), {"province": "广东"}, Situation(CUSTOMER), STAFFED, Load()
    )
    assert (decision.territory_id, decision.owner_id) == (DEFAULT, None)
    assert [c.kind for c in decision.conflicts] == [ConflictKind.NO_MATCH]


@pytest.mark.parametrize(
    ("policy", "territory"), [(TiePolicy.FIRST_CREATED, EAST), (TiePolicy.POOL, DEFAULT)]
)
def test_a_tie_between_different_targets_follows_the_tie_policy_and_is_logged(
    policy: TiePolicy, territory: uuid.UUID
) -> None:
    first = rule(1, where("province", Op.EQ, "上海"), EAST)
    second = rule(2, where("tags", Op.CONTAINS_NONE, ["x"]), SOUTH)
    decision = resolve(
        ruleset(second, first, tie_policy=policy),
        SHANGHAI,
        Situation(CUSTOMER),
        directory(),
        Load(),
    )
    assert decision.territory_id == territory
    (conflict,) = [c for c in decision.conflicts if c.kind is ConflictKind.RULE_TIE]
    assert set(conflict.rule_ids) == {first.id, second.id}


def test_a_first_created_tie_goes_to_the_earliest_created_rule_not_the_smallest_id() -> None:
    later = Rule(uuid.UUID(int=1), "later", 10, where("province", Op.EQ, "上海"), SOUTH, position=2)
    earlier = Rule(
        uuid.UUID(int=2), "earlier", 10, where("tags", Op.CONTAINS_NONE, ["x"]), EAST, position=1
    )
    decision = resolve(ruleset(later, earlier), SHANGHAI, Situation(CUSTOMER), STAFFED, Load())
    assert (decision.territory_id, decision.rule_id) == (EAST, earlier.id)


def test_same_priority_rules_with_the_same_target_are_no_conflict() -> None:
    again = rule(2, where("tags", Op.CONTAINS_NONE, ["x"]), EAST)
    decision = resolve(ruleset(EAST_RULE, again), SHANGHAI, Situation(CUSTOMER), STAFFED, Load())
    assert decision.conflicts == ()


def test_a_locked_customer_stays_and_a_drift_is_logged_once_per_version() -> None:
    situation = Situation(CUSTOMER, territory_id=SOUTH, owner_id=LI, locked=True)
    decision = resolve(ruleset(EAST_RULE), SHANGHAI, situation, STAFFED, Load())
    assert (decision.territory_id, decision.owner_id, decision.source) == (SOUTH, LI, Source.KEPT)
    (drift,) = decision.conflicts
    assert drift.kind is ConflictKind.LOCKED_DRIFT
    assert drift.cause == ("customer", str(CUSTOMER), "ruleset", "7")


def test_a_locked_customer_where_the_rules_agree_raises_nothing() -> None:
    situation = Situation(CUSTOMER, territory_id=EAST, owner_id=LI, locked=True)
    decision = resolve(ruleset(EAST_RULE), SHANGHAI, situation, STAFFED, Load())
    assert decision.conflicts == ()


def test_a_subsidiary_follows_its_group_root() -> None:
    situation = Situation(
        CUSTOMER, group_root_id=uuid.UUID(int=50), group_territory_id=SOUTH, group_owner_id=WANG
    )
    decision = resolve(ruleset(EAST_RULE), SHANGHAI, situation, STAFFED, Load())
    assert (decision.territory_id, decision.owner_id, decision.source) == (
        SOUTH,
        WANG,
        Source.GROUP,
    )


def test_a_subsidiary_locked_to_another_owner_splits_the_group() -> None:
    situation = Situation(
        CUSTOMER,
        territory_id=SOUTH,
        owner_id=LI,
        locked=True,
        group_root_id=uuid.UUID(int=50),
        group_territory_id=SOUTH,
        group_owner_id=WANG,
    )
    decision = resolve(ruleset(), SHANGHAI, situation, STAFFED, Load())
    assert ConflictKind.GROUP_SPLIT in {c.kind for c in decision.conflicts}


def test_stability_first_keeps_the_current_owner_of_an_unchanged_territory() -> None:
    members = directory((EAST, Member(ZHANG)), (EAST, Member(LI)), (EAST, Member(WANG)))
    for current in (ZHANG, LI, WANG):
        situation = Situation(CUSTOMER, territory_id=EAST, owner_id=current)
        decision = resolve(ruleset(EAST_RULE), SHANGHAI, situation, members, Load())
        assert decision.owner_id == current
        assert decision.trace[-1].step == "stability"


def test_an_inactive_or_full_current_owner_is_replaced_by_the_strategy() -> None:
    members = directory((EAST, Member(ZHANG)), (EAST, Member(LI, capacity=1)), inactive=(ZHANG,))
    load = Load()
    load.in_territory[(EAST, LI)] = 1  # another customer already fills LI's one place
    situation = Situation(CUSTOMER, territory_id=EAST, owner_id=ZHANG)
    decision = resolve(ruleset(EAST_RULE), SHANGHAI, situation, members, load)
    assert decision.owner_id is None
    assert [c.kind for c in decision.conflicts] == [ConflictKind.NO_CAPACITY]


def test_the_rules_named_owner_wins_unless_inactive() -> None:
    named = rule(1, where("province", Op.EQ, "上海"), EAST, owner_id=WANG)
    members = directory((EAST, Member(ZHANG)))
    assert resolve(ruleset(named), SHANGHAI, Situation(CUSTOMER), members, Load()).owner_id == WANG
    gone = directory((EAST, Member(ZHANG)), inactive=(WANG,))
    assert resolve(ruleset(named), SHANGHAI, Situation(CUSTOMER), gone, Load()).owner_id == ZHANG


def test_least_loaded_picks_the_member_with_fewest_customers() -> None:
    members = directory((EAST, Member(ZHANG)), (EAST, Member(LI)), strategy=Strategy.LEAST_LOADED)
    load = Load()
    load.in_territory[(EAST, ZHANG)] = 3
    load.in_territory[(EAST, LI)] = 2
    assert resolve(ruleset(EAST_RULE), SHANGHAI, Situation(CUSTOMER), members, load).owner_id == LI


def test_round_robin_and_weighted_spread_customers_by_share() -> None:
    even = directory((EAST, Member(ZHANG)), (EAST, Member(LI)))
    weighted = directory(
        (EAST, Member(ZHANG, weight=3)), (EAST, Member(LI, weight=1)), strategy=Strategy.WEIGHTED
    )
    customers = [uuid.UUID(int=10_000 + i) for i in range(4000)]
    spread = [
        resolve(ruleset(EAST_RULE), SHANGHAI, Situation(c), even, Load()).owner_id
        for c in customers
    ]
    shares = [
        resolve(ruleset(EAST_RULE), SHANGHAI, Situation(c), weighted, Load()).owner_id
        for c in customers
    ]
    assert 0.45 < spread.count(ZHANG) / len(customers) < 0.55
    assert 0.70 < shares.count(ZHANG) / len(customers) < 0.80


# --- the set-based run's shortcut is the engine's own: it never disagrees with resolve -------

TERRITORIES, OWNERS = (EAST, SOUTH, DEFAULT), (ZHANG, LI, WANG)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[CompiledRuleSet, Directory, Load, Situation, dict[str, Any]]:
    maybe_capacity = st.sampled_from([None, None, None, None, None, 0, 1, 3])
    members = [
        (territory, Member(owner, capacity=draw(maybe_capacity)))
        for territory in TERRITORIES
        for owner in OWNERS
        if draw(st.booleans())
    ]
    owners = {
        o: OwnerInfo(
            o,
            active=draw(st.sampled_from([True, True, True, True, False])),
            capacity=draw(maybe_capacity),
        )
        for o in OWNERS
    }
    world = Directory(
        {
            t: TerritoryInfo(t, Strategy.ROUND_ROBIN, tuple(m for tt, m in members if tt == t))
            for t in TERRITORIES
        },
        owners,
    )
    load = Load()
    for member_of, member in members:
        for _ in range(draw(st.integers(0, 3))):
            load.move(None, (member_of, member.owner_id))
    rules = [
        rule(
            n,
            # The first rule matches most customers (上海), so that matches are common.
            where("province", Op.EQ, "上海" if n == 0 else draw(st.sampled_from(["上海", "广东"]))),
            draw(st.sampled_from(TERRITORIES)),
            priority=draw(st.sampled_from([1, 2])),
            owner_id=draw(st.sampled_from([None, None, None, *OWNERS])),
        )
        for n in range(draw(st.integers(1, 3)))
    ]
    compiled = ruleset(*rules, tie_policy=draw(st.sampled_from(list(TiePolicy))))
    # Mostly where the first rule points, so that the customers who stay are common.
    targets = [r.territory_id for r in rules[:1]] or list(TERRITORIES)
    territory: uuid.UUID | None = draw(st.sampled_from([None, *targets * 6]))
    owner: uuid.UUID | None = None
    if territory is not None:
        here = [m.owner_id for t, m in members if t == territory] or list(OWNERS)
        owner = draw(st.sampled_from([None, *here * 2]))
    situation = Situation(
        customer_id=CUSTOMER,
        territory_id=territory,
        owner_id=owner,
        locked=territory is not None and draw(st.booleans()),
    )
    return (
        compiled,
        world,
        load,
        situation,
        {"province": draw(st.sampled_from(["上海"] * 4 + ["广东"]))},
    )


World = tuple[CompiledRuleSet, Directory, Load, Situation, dict[str, Any]]


def settled_in(world: World) -> Settled | None:
    compiled, directory, _, situation, facts = world
    return settled(
        compiled.match(facts | {"tags": frozenset()}),
        situation.territory_id,
        situation.owner_id,
        locked=situation.locked,
        in_group=False,
        unbounded=directory.unbounded(),
        closed=directory.closed(),
    )


@pytest.mark.parametrize("kind", list(Settled))
def test_the_worlds_reach_every_way_of_staying(kind: Settled) -> None:
    find(worlds(), lambda world: settled_in(world) is kind, settings=settings(max_examples=2000))


@settings(max_examples=600)
@given(worlds())
def test_a_customer_the_engine_calls_settled_is_left_where_it_is_by_resolve(world: World) -> None:
    assert_settled_agrees(world)


CLOSED = directory((EAST, Member(ZHANG)), inactive=(ZHANG,))  # nobody in EAST can take one


@pytest.mark.parametrize(
    "world",
    [
        # Locked in a pool nobody can take from: the lock keeps it, and no_capacity is not
        # the lock's to signal.
        (
            ruleset(EAST_RULE),
            CLOSED,
            Load(),
            Situation(CUSTOMER, EAST, None, locked=True),
            dict(SHANGHAI),
        ),
        # Two rules tie on different targets under the pool policy: the default pool wins.
        (
            ruleset(EAST_RULE, rule(2, EAST_RULE.condition, SOUTH), tie_policy=TiePolicy.POOL),
            STAFFED,
            Load(),
            Situation(CUSTOMER, EAST, ZHANG),
            dict(SHANGHAI),
        ),
    ],
    ids=["locked-in-a-closed-pool", "tie-to-the-pool"],
)
def test_the_edges_of_settled_agree_with_resolve(world: World) -> None:
    assert_settled_agrees(world)


def assert_settled_agrees(world: World) -> None:
    """When the engine says the customer stays, resolving it leaves it there, signalling
    no_capacity exactly for a closed pool, and never a drift."""
    compiled, directory, load, situation, facts = world
    stays = settled_in(world)
    if stays is None:
        return
    decision = resolve(compiled, facts | {"tags": frozenset()}, situation, directory, load)
    assert (decision.territory_id, decision.owner_id) == (
        situation.territory_id,
        situation.owner_id,
    )
    kinds = {signal.kind for signal in decision.conflicts}
    assert (ConflictKind.NO_CAPACITY in kinds) == (stays is Settled.CLOSED_POOL)
    assert ConflictKind.LOCKED_DRIFT not in kinds
