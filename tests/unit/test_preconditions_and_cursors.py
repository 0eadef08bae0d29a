"""If-Match parsing, version checks and pagination cursors."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from territory_service.api.dependencies import parse_if_match
from territory_service.errors import InvalidCursor, InvalidPrecondition, StaleVersion
from territory_service.ids import new_id
from territory_service.pagination import decode_cursor, encode_cursor


@pytest.mark.parametrize(
    ("header", "versions"),
    [('"3"', {3}), ('W/"3"', {3}), ('"1", "4"', {1, 4}), ("*", None)],
)
def test_if_match_accepts_entity_tags_weak_tags_lists_and_star(
    header: str, versions: set[int] | None
) -> None:
    expected = parse_if_match(header)
    assert expected.versions == (None if versions is None else frozenset(versions))


@pytest.mark.parametrize("header", ["3", '"v3"', '"3', "", '"3",,"4"', '"99999999999"'])
def test_if_match_rejects_anything_else(header: str) -> None:
    with pytest.raises(InvalidPrecondition):
        parse_if_match(header)


def test_expected_version_fails_on_another_version_and_star_never_does() -> None:
    parse_if_match('"2"').check("customer", 2)
    parse_if_match("*").check("customer", 41)
    with pytest.raises(StaleVersion):
        parse_if_match('"2"').check("customer", 3)


@given(st.uuids())
def test_cursor_round_trips_any_key(key: uuid.UUID) -> None:
    assert decode_cursor(encode_cursor(key)) == key


@given(st.text(max_size=80))
def test_a_cursor_decodes_to_a_key_or_is_an_invalid_cursor_error(garbage: str) -> None:
    with contextlib.suppress(InvalidCursor):
        assert isinstance(decode_cursor(garbage), uuid.UUID)


def test_new_ids_are_version_7_and_ordered_by_time() -> None:
    first = new_id()
    later = [new_id() for _ in range(1000)]
    assert first.version == 7
    assert all(first.bytes[:6] <= other.bytes[:6] for other in later)
