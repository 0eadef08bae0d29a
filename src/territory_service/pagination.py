"""Keyset pagination: lists are ordered by a unique key and a cursor is the last key seen."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from territory_service.errors import InvalidCursor

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


ListKey = uuid.UUID | int
# Cursors are URL-safe base64 without padding; an integer key is a BIGINT sequence number.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
_BIGINT = range(-(2**63), 2**63)


def encode_cursor(key: ListKey) -> str:
    value: str | int = key.hex if isinstance(key, uuid.UUID) else key
    raw = json.dumps({"after": value}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> ListKey:
    """The last key of the previous page: a UUID, or a sequence number (never a bool)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["after"]
        if isinstance(value, int) and not isinstance(value, bool):
            if value not in _BIGINT:
                raise ValueError("the cursor's key is out of range")
            return value
        return uuid.UUID(hex=value)
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidCursor() from exc


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    *,
    key: InstrumentedAttribute[uuid.UUID] | InstrumentedAttribute[int],
    limit: int,
    cursor: str | None,
) -> Page[Any]:
    """Run `statement` (rows of one entity) ordered by `key`, one page after `cursor`."""
    if cursor is not None:
        after = decode_cursor(cursor)
        if not isinstance(after, key.type.python_type):
            raise InvalidCursor()
        statement = statement.where(key > after)
    rows: Sequence[Any] = (
        (await session.execute(statement.order_by(key).limit(limit + 1))).unique().scalars().all()
    )
    items = list(rows[:limit])
    has_more = len(rows) > limit
    next_cursor = encode_cursor(getattr(items[-1], key.key)) if has_more else None
    return Page(items=items, next_cursor=next_cursor)
