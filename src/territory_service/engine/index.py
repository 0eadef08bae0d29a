"""A bitmask index over the clauses of a rule set, so a customer is tested only against the
clauses that can match it.

Every clause gets a bit; bits are ordered by (rule priority, rule position, clause), so the
lowest set bit of a candidate mask is the best-placed candidate. For each indexed field the
index keeps `free`, the clauses that do not constrain the field, and for each value (or value
range) the clauses that accept it. A customer's candidates are the AND over indexed fields of
`free | accepted(value)`: every indexed predicate of a candidate holds, and the clause is then
checked in full. Equality (`eq`, `in`) is indexed by hashed value, ranges (`lt` … `between`)
by the elementary intervals between their bounds, tags (`contains_any`, `contains_all`) by tag.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from territory_service.engine.conditions import Clause, Op, Predicate, is_number
from territory_service.engine.facts import Facts
from territory_service.engine.predicates import value_key

# low, low inclusive, high, high inclusive. Bounds keep the rule's own numbers (int or float):
# comparisons between them and facts are exact, where a float() of a large int is not.
Interval = tuple[float, bool, float, bool]
WHOLE_LINE: Interval = (float("-inf"), False, float("inf"), False)


def interval_of(predicate: Predicate) -> Interval | None:
    op, value = predicate.op, predicate.value
    if op is Op.BETWEEN:
        return (value[0], True, value[1], False)
    if not is_number(value):
        return None
    bound: float = value
    return {
        Op.LT: (float("-inf"), False, bound, False),
        Op.LTE: (float("-inf"), False, bound, True),
        Op.GT: (bound, False, float("inf"), False),
        Op.GTE: (bound, True, float("inf"), False),
    }.get(op)


def intersect(a: Interval, b: Interval) -> Interval:
    low = max((a[0], not a[1]), (b[0], not b[1]))
    high = min((a[2], a[3]), (b[2], b[3]))
    return (low[0], not low[1], high[0], high[1])


@dataclass
class _EqualityField:
    free: int = 0
    accepted: dict[tuple[str, object], int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class _RangeField:
    free: int = 0
    bounds: list[float] = field(default_factory=list)
    # 2k+1 regions for k bounds: below b0, b0 itself, between b0 and b1, b1, ..., above.
    regions: list[int] = field(default_factory=list)


@dataclass
class _TagField:
    free: int = 0
    accepted: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class ClauseIndex:
    def __init__(self, clauses: Sequence[Clause]) -> None:
        self.everything = (1 << len(clauses)) - 1
        self._equality: dict[str, _EqualityField] = {}
        self._ranges: dict[str, _RangeField] = {}
        self._tags: dict[str, _TagField] = {}
        ranges: dict[str, dict[int, Interval]] = defaultdict(dict)
        self.exact = [self._add(bit, clause, ranges) for bit, clause in enumerate(clauses)]
        for name, intervals in ranges.items():
            self._ranges[name] = _build_range_field(intervals)
        indexed: list[_EqualityField | _RangeField | _TagField] = [
            *self._equality.values(),
            *self._ranges.values(),
            *self._tags.values(),
        ]
        for one in indexed:
            one.free ^= self.everything  # from "constrained" to "not constrained"
        self.freeze()

    def _add(
        self, bit: int, clause: Clause, ranges: dict[str, dict[int, Interval]]
    ) -> frozenset[int]:
        """Index one clause; returns the positions of the predicates the index decides exactly
        (a candidate satisfies them, so only the others need testing)."""
        accepted: dict[str, frozenset[tuple[str, object]]] = {}
        tag_done: set[str] = set()
        exact: set[int] = set()
        mask = 1 << bit
        for position, predicate in enumerate(clause.predicates):
            name = predicate.field
            if predicate.op in (Op.EQ, Op.IN):
                values = [predicate.value] if predicate.op is Op.EQ else predicate.value
                keys = frozenset(filter(None, map(value_key, values)))
                accepted[name] = accepted[name] & keys if name in accepted else keys
                exact.add(position)
            elif (interval := interval_of(predicate)) is not None:
                ranges[name][bit] = intersect(ranges[name].get(bit, WHOLE_LINE), interval)
                exact.add(position)
            elif predicate.op in (Op.CONTAINS_ANY, Op.CONTAINS_ALL) and name not in tag_done:
                tag_done.add(name)
                tags = self._tags.setdefault(name, _TagField())
                tags.free |= mask
                # contains_all needs every tag, so any one of them is a necessary condition.
                wanted = predicate.value if predicate.op is Op.CONTAINS_ANY else predicate.value[:1]
                for tag in wanted:
                    tags.accepted[tag] |= mask
                if len(wanted) == len(predicate.value):
                    exact.add(position)
        for name, keys in accepted.items():
            equality = self._equality.setdefault(name, _EqualityField())
            equality.free |= mask
            for key in keys:
                equality.accepted[key] |= mask
        return frozenset(exact)

    def freeze(self) -> None:
        """Flatten the per-field tables into tuples for the hot path."""
        # For equality the whole allowed mask is stored per value: one AND per field. Text
        # values, the common case, also get a table keyed by the text itself.
        self._equality_table: tuple[tuple[str, int, dict[Any, int], dict[str, int]], ...] = tuple(
            (
                name,
                f.free,
                {key: f.free | bits for key, bits in f.accepted.items()},
                {str(key[1]): f.free | bits for key, bits in f.accepted.items() if key[0] == "s"},
            )
            for name, f in self._equality.items()
        )
        self._range_table = tuple(
            (name, f.free, f.bounds, tuple(f.free | region for region in f.regions))
            for name, f in self._ranges.items()
        )
        self._tag_table = tuple((name, f.free, dict(f.accepted)) for name, f in self._tags.items())
        self.fields = frozenset(
            name for table in (self._equality_table, self._range_table, self._tag_table)
            for name, *_ in table
        )  # fmt: skip

    def candidates(self, facts: Facts) -> int:
        """The clauses whose indexed predicates all hold for `facts`, as a bit mask."""
        return self._mask(facts.get, self._equality_table, self._range_table, self._tag_table)

    def reader(self, positions: Mapping[str, int]) -> Callable[[Sequence[Any]], int] | None:
        """`candidates` for rows that hold each indexed fact at `positions[field]` (tags as a
        list, or None for none), without building a facts mapping first. None when some indexed
        field has no position."""
        if not self.fields <= positions.keys():
            return None
        equality = tuple((positions[name], *rest) for name, *rest in self._equality_table)
        ranges = tuple((positions[name], *rest) for name, *rest in self._range_table)
        tags = tuple((positions[name], *rest) for name, *rest in self._tag_table)
        mask = self._mask
        return lambda row: mask(row.__getitem__, equality, ranges, tags)  # type: ignore[arg-type]

    def _mask(
        self,
        fact: Callable[[Any], Any],
        equality: tuple[tuple[Any, int, dict[Any, int], dict[str, int]], ...],
        ranges: tuple[tuple[Any, int, list[float], tuple[int, ...]], ...],
        tags: tuple[tuple[Any, int, dict[str, int]], ...],
    ) -> int:
        mask = self.everything
        for key, free, allowed, by_text in equality:
            value = fact(key)
            # value_key inlined for text: this runs for every customer and indexed field.
            if type(value) is str:
                mask &= by_text.get(value, free)
            elif value is None:
                mask &= free
            else:
                mask &= allowed.get(value_key(value), free)
        for key, free, bounds, regions in ranges:
            value = fact(key)
            if type(value) is int or (type(value) is float and math.isfinite(value)):
                i = bisect.bisect_left(bounds, value)
                mask &= regions[2 * i + 1 if i < len(bounds) and bounds[i] == value else 2 * i]
            else:
                mask &= free
        for key, free, accepted in tags:
            held = fact(key)
            found = 0
            if type(held) in _TAG_TYPES:
                for tag in held:
                    found |= accepted.get(tag, 0)
            mask &= free | found
        return mask


_TAG_TYPES = (frozenset, list)


def _build_range_field(intervals: dict[int, Interval]) -> _RangeField:
    """For each region between bounds, the clauses whose interval covers it.

    A region's membership changes only at bounds, so a running XOR of the bits that enter and
    leave at each region builds every region's mask in one pass.
    """
    bounds = sorted(
        {b for low, _, high, _ in intervals.values() for b in (low, high)}
        - {
            float("-inf"),
            float("inf"),
        }
    )
    position = {bound: i for i, bound in enumerate(bounds)}
    toggles = [0] * (2 * len(bounds) + 2)
    constrained = 0
    for bit, interval in intervals.items():
        constrained |= 1 << bit
        first, last = _region_span(position, len(bounds), interval)
        if first <= last:
            toggles[first] ^= 1 << bit
            toggles[last + 1] ^= 1 << bit
    regions, running = [], 0
    for toggle in toggles[:-1]:
        running ^= toggle
        regions.append(running)
    result = _RangeField(free=constrained, bounds=bounds)
    # `free` still holds the constrained bits here; the index flips it and ORs it into regions.
    result.regions = regions
    return result


def _region_span(position: dict[float, int], count: int, interval: Interval) -> tuple[int, int]:
    """The first and last region an interval covers."""
    low, low_in, high, high_in = interval
    if low == float("-inf"):
        first = 0
    else:
        i = position[low]
        first = 2 * i + 1 if low_in else 2 * i + 2
    if high == float("inf"):
        last = 2 * count
    else:
        i = position[high]
        last = 2 * i + 1 if high_in else 2 * i
    return first, last
