"""What an ownership change writes: the row, its event, and when the reclaim clock restarts."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import Table

from territory_service.ownership.changes import Attribution, Held, OwnershipChange
from territory_service.ownership.models import Ownership, OwnershipEvent, OwnershipSource

EARLIER = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
HERE, THERE = uuid.uuid4(), uuid.uuid4()
ALICE, BOB = uuid.uuid4(), uuid.uuid4()
BY = Attribution("why", None, None, None)


def change(
    before: Held | None, owner_id: uuid.UUID | None, source: OwnershipSource
) -> OwnershipChange:
    return OwnershipChange(uuid.uuid4(), before, THERE, owner_id, source, None, None, False, NOW)


def held_by(owner_id: uuid.UUID | None) -> Held:
    return Held(3, HERE, owner_id, None if owner_id is None else EARLIER)


@pytest.mark.parametrize(
    ("before", "owner_id", "source", "held_since"),
    [
        (None, ALICE, OwnershipSource.RULE, NOW),  # a first owner
        (None, None, OwnershipSource.RULE, None),  # a first place in the pool
        (held_by(ALICE), None, OwnershipSource.RELEASE, None),  # back to the pool
        (held_by(None), ALICE, OwnershipSource.CLAIM, NOW),  # claimed from the pool
        (held_by(None), ALICE, OwnershipSource.TRANSFER, NOW),  # nobody held it before
        (held_by(ALICE), ALICE, OwnershipSource.RULE, EARLIER),  # same owner, another territory
        (held_by(ALICE), ALICE, OwnershipSource.MANUAL, EARLIER),
        (held_by(ALICE), BOB, OwnershipSource.RULE, NOW),
        (held_by(ALICE), BOB, OwnershipSource.MANUAL, NOW),
        (held_by(ALICE), BOB, OwnershipSource.CLAIM, NOW),
        (held_by(ALICE), BOB, OwnershipSource.RECLAIM, NOW),
        (held_by(ALICE), BOB, OwnershipSource.TRANSFER, EARLIER),  # a hand-over buys no time
        (held_by(ALICE), BOB, OwnershipSource.GROUP, EARLIER),
        (held_by(ALICE), BOB, OwnershipSource.MERGE, EARLIER),
    ],
)
def test_the_reclaim_clock_restarts_only_when_someone_new_decides_to_work_the_customer(
    before: Held | None, owner_id: uuid.UUID | None, source: OwnershipSource, held_since: object
) -> None:
    made = change(before, owner_id, source)

    assert made.held_since == held_since
    assert made.row()["held_since"] == held_since


def test_the_version_follows_the_row_it_replaces() -> None:
    assert change(None, ALICE, OwnershipSource.RULE).version == 1
    assert change(held_by(ALICE), BOB, OwnershipSource.RULE).version == 4


def columns(table: object) -> set[str]:
    assert isinstance(table, Table)
    return {column.name for column in table.c}


def test_a_change_gives_every_column_of_its_row_and_its_event() -> None:
    """A column added to a table and not here would be left to its default by one writer and
    not by another; the event's id and feed position are the database's."""
    made = change(held_by(ALICE), BOB, OwnershipSource.TRANSFER)

    assert set(made.row()) == columns(Ownership.__table__)
    assert set(made.event(BY)) == columns(OwnershipEvent.__table__) - {"id", "position"}


def test_the_row_and_its_event_agree_on_what_they_share() -> None:
    made = change(held_by(ALICE), BOB, OwnershipSource.TRANSFER)
    row, event = made.row(), made.event(BY)

    assert {name: event[name] for name in row.keys() & event.keys()} == {
        name: row[name] for name in row.keys() & event.keys()
    }
    assert (event["from_territory_id"], event["from_owner_id"]) == (HERE, ALICE)
    assert (event["territory_id"], event["owner_id"], event["version"]) == (THERE, BOB, 4)
    assert event["reason"] == "why"
