"""Typed dependencies shared by every router."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.errors import InvalidPrecondition, PreconditionRequired
from territory_service.pagination import CURSOR_PATTERN, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from territory_service.preconditions import ExpectedVersion


# Every dependency is `async def`: FastAPI runs a plain `def` one in a worker thread, which
# costs more than the work most of them do.
async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.session_factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_ENTITY_TAG = re.compile(r'^\s*(?:W/)?"(\d{1,10})"\s*$')
# For the document: "*" or a list of entity tags (`parse_if_match` also takes spaces around and
# weak tags, which no client needs to send).
IF_MATCH_PATTERN = r'^(\*|"[0-9]{1,10}"(, "[0-9]{1,10}")*)$'


def parse_if_match(value: str) -> ExpectedVersion:
    if value.strip() == "*":
        return ExpectedVersion(versions=None, text="*")
    versions = set()
    for part in value.split(","):
        match = _ENTITY_TAG.match(part)
        if match is None:
            raise InvalidPrecondition(
                f'If-Match must be "*" or entity tags such as "3", got {value!r}',
                errors=[{"parameter": "If-Match", "location": "header", "detail": "malformed"}],
            )
        versions.add(int(match.group(1)))
    return ExpectedVersion(versions=frozenset(versions), text=value.strip())


async def get_expected_version(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            # Checked by `parse_if_match` (400, not FastAPI's 422); declared for clients.
            json_schema_extra={"pattern": IF_MATCH_PATTERN},
            description="Entity tag(s) from an earlier read (`ETag`); "
            "the write fails with 412 when the resource has changed since.",
        ),
    ] = None,
) -> ExpectedVersion | None:
    return None if if_match is None else parse_if_match(if_match)


ExpectedVersionDep = Annotated[ExpectedVersion | None, Depends(get_expected_version)]


async def require_expected_version(expected: ExpectedVersionDep) -> ExpectedVersion:
    """For writes that must name the version they are based on: no If-Match answers 428."""
    if expected is None:
        raise PreconditionRequired()
    return expected


RequiredVersionDep = Annotated[ExpectedVersion, Depends(require_expected_version)]

LimitQuery = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, at most {MAX_PAGE_SIZE}."),
]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=200, pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page."
    ),
]


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def set_location(response: Response, location: str, version: int) -> None:
    """A 201 or 202 answer: where the resource (or the job doing the work) is read, and its
    version."""
    response.headers["Location"] = location
    set_etag(response, version)


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "CursorQuery",
    "ExpectedVersionDep",
    "RequiredVersionDep",
    "LimitQuery",
    "SessionDep",
    "set_etag",
    "set_location",
]
