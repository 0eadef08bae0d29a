"""A rule set compiled once per version: which rules match a customer, and which one wins."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from territory_service.engine.conditions import Clause, Condition
from territory_service.engine.facts import Facts
from territory_service.engine.index import ClauseIndex
from territory_service.engine.predicates import Test, compile_clause


class TiePolicy(enum.StrEnum):
    """What happens when matching rules share the winning priority but name other targets."""

    FIRST_CREATED = "first_created"  # the earliest-created of them wins; a conflict is logged
    POOL = "pool"  # the default territory's pool; a conflict is logged
    REJECT = "reject"  # validation refuses a rule set in which this can happen


@dataclass(frozen=True)
class Rule:
    id: uuid.UUID
    name: str
    priority: int
    condition: Condition
    territory_id: uuid.UUID
    owner_id: uuid.UUID | None = None
    enabled: bool = True
    position: int = 0  # creation order within the rule set; earlier wins a first_created tie

    @property
    def order(self) -> tuple[int, int, str]:
        """Precedence: lowest priority, then earliest created (position), then id."""
        return (self.priority, self.position, str(self.id))

    @property
    def target(self) -> tuple[uuid.UUID, uuid.UUID | None]:
        return (self.territory_id, self.owner_id)


@dataclass(frozen=True)
class RuleSetSpec:
    version: int
    rules: tuple[Rule, ...]
    default_territory_id: uuid.UUID
    tie_policy: TiePolicy = TiePolicy.FIRST_CREATED


class Match(NamedTuple):
    """The rules matching at the winning (lowest) priority, in creation order."""

    top: tuple[Rule, ...]

    @property
    def priority(self) -> int | None:
        return self.top[0].priority if self.top else None

    @property
    def is_tie(self) -> bool:
        """Several winning rules name different targets (same target is no conflict)."""
        return len(self.top) > 1 and len({rule.target for rule in self.top}) > 1


# Distinct candidate masks a row matcher remembers: far more than rule sets produce in practice.
_KNOWN_MASKS = 65536


class CompiledRuleSet:
    def __init__(self, spec: RuleSetSpec) -> None:
        self.spec = spec
        self.rules = tuple(sorted((r for r in spec.rules if r.enabled), key=lambda r: r.order))
        self._clause_rule: list[Rule] = []
        clauses: list[Clause] = []
        for rule in self.rules:
            for clause in rule.condition.clauses:
                clauses.append(clause)
                self._clause_rule.append(rule)
        self.index = ClauseIndex(clauses)
        # The facts any enabled rule reads: bulk work loads only these.
        self.fields = frozenset(p.field for clause in clauses for p in clause.predicates)
        self._clause_test: list[Test] = [compile_clause(clause) for clause in clauses]
        # What is left to test once the index has chosen a clause: the predicates it does not
        # decide exactly (None: nothing, a candidate is a match).
        self._residual_test: list[Test | None] = [
            _residual(clause, exact)
            for clause, exact in zip(clauses, self.index.exact, strict=True)
        ]
        self._residual_bits = sum(
            1 << bit for bit, test in enumerate(self._residual_test) if test is not None
        )

    def match(self, facts: Facts) -> Match:
        """The winning priority's rules, testing only the clauses the index leaves."""
        return self._match(self.index.candidates(facts), facts)

    def row_matcher(self, positions: Mapping[str, int]) -> Callable[[Sequence[Any]], Match | None]:
        """`match` for rows that hold each fact the index reads at `positions[field]` (see
        `ClauseIndex.reader`). Rows with the same candidates share one answer, when no
        candidate needs a test beyond the index; for the others, and when some indexed field
        has no position, the matcher answers None and the caller matches the row's facts."""
        read = self.index.reader(positions)
        if read is None:
            return lambda _row: None
        residual, known = self._residual_bits, dict[int, Match]()

        def match(row: Sequence[Any]) -> Match | None:
            mask = read(row)
            found = known.get(mask)
            if found is None and not mask & residual:
                found = self._match(mask, {})
                if len(known) < _KNOWN_MASKS:
                    known[mask] = found
            return found

        return match

    def _match(self, mask: int, facts: Facts) -> Match:
        top: list[Rule] = []
        clause_rule, residual_test = self._clause_rule, self._residual_test
        while mask:  # set bits from the lowest: best-placed candidates first
            low = mask & -mask
            mask ^= low
            bit = low.bit_length() - 1
            rule = clause_rule[bit]
            if top:
                if rule.priority > top[0].priority:
                    break
                if top[-1] is rule:
                    continue
            residual = residual_test[bit]
            if residual is None or residual(facts):
                top.append(rule)
        return Match(tuple(top))

    def match_by_scan(self, facts: Facts) -> Match:
        """The same answer from a plain first-match scan of every clause (the baseline)."""
        top: list[Rule] = []
        for rule, test in zip(self._clause_rule, self._clause_test, strict=True):
            if top and rule.priority > top[0].priority:
                break
            if (not top or top[-1] is not rule) and test(facts):
                top.append(rule)
        return Match(tuple(top))

    def all_matches(self, facts: Facts) -> tuple[Rule, ...]:
        """Every enabled rule that matches, in priority order (for explain), testing only the
        clauses the index leaves."""
        found: list[Rule] = []
        mask = self.index.candidates(facts)
        clause_rule, residual_test = self._clause_rule, self._residual_test
        while mask:
            low = mask & -mask
            mask ^= low
            bit = low.bit_length() - 1
            rule = clause_rule[bit]
            if found and found[-1] is rule:  # a rule's clauses are adjacent: it matched already
                continue
            residual = residual_test[bit]
            if residual is None or residual(facts):
                found.append(rule)
        return tuple(found)


def _residual(clause: Clause, exact: frozenset[int]) -> Test | None:
    rest = tuple(p for position, p in enumerate(clause.predicates) if position not in exact)
    return compile_clause(Clause(rest)) if rest else None
