"""The storm's and the state machine's checks of the stored history can fail: each is shown a
history broken in its own way (what the schema forbids is not among them)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from tests.concurrency.invariants import _chain_violations

CUSTOMER = uuid.uuid4()
EAST, SOUTH = uuid.uuid4(), uuid.uuid4()
ANN, BOB = uuid.uuid4(), uuid.uuid4()


def event(version: int, start: tuple[Any, Any], end: tuple[Any, Any], **fields: Any) -> Any:
    return SimpleNamespace(
        version=version,
        from_territory_id=start[0],
        from_owner_id=start[1],
        territory_id=end[0],
        owner_id=end[1],
        locked=fields.get("locked", True),
        source=fields.get("source", "manual"),
        rule_id=None,
        ruleset_version=None,
    )


def row(version: int, place: tuple[Any, Any], **fields: Any) -> Any:
    return event(version, (None, None), place, **fields)  # a row has the fields replayed


HISTORY = [
    event(1, (None, None), (EAST, ANN)),
    event(2, (EAST, ANN), (SOUTH, None)),
    event(3, (SOUTH, None), (SOUTH, BOB)),
]


def test_an_unbroken_history_that_replays_to_the_row_passes() -> None:
    assert _chain_violations(CUSTOMER, HISTORY, row(3, (SOUTH, BOB)), exists=True) == []


@pytest.mark.parametrize(
    ("events", "current", "complaint"),
    [
        pytest.param(
            [HISTORY[0], HISTORY[2]], row(3, (SOUTH, BOB)), "are not 1..2", id="a version gap"
        ),
        pytest.param(
            HISTORY[:2] + [event(3, (EAST, ANN), (SOUTH, BOB))],
            row(3, (SOUTH, BOB)),
            "starts from",
            id="an event not starting where the last ended",
        ),
        pytest.param(HISTORY, row(3, (SOUTH, ANN)), "replaying", id="another owner in the row"),
        pytest.param(
            HISTORY, row(3, (SOUTH, BOB), locked=False), "replaying", id="another lock in the row"
        ),
        pytest.param(HISTORY, row(4, (SOUTH, BOB)), "ownership version 4", id="a version ahead"),
        pytest.param(HISTORY, None, "no ownership row", id="no row"),
    ],
)
def test_a_broken_history_is_reported(events: list[Any], current: Any, complaint: str) -> None:
    problems = _chain_violations(CUSTOMER, events, current, exists=True)
    assert any(complaint in problem for problem in problems), problems


def test_a_gone_customer_whose_history_does_not_end_with_its_removal_is_reported() -> None:
    problems = _chain_violations(CUSTOMER, HISTORY, None, exists=False)
    assert any("does not end with its removal" in problem for problem in problems), problems
    removed = [*HISTORY, event(4, (SOUTH, BOB), (None, None))]
    assert _chain_violations(CUSTOMER, removed, None, exists=False) == []
