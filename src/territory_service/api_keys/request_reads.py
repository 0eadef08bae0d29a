"""What a request reads of the database as it starts: its API key, and which rule set is active.

Both are read fresh for every request, so that a revocation, an expiry or an activation holds
from the next request on, on every replica. One statement answers them for every request that
asked while the previous statement ran (see `coalescing`): under load, a query serves a round of
requests rather than one. Stateless previews resolve with the active rule set read here
(`api.authentication.active_ruleset`), which costs a scalar subquery rather than a round of
their own.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import bindparam, literal, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import Label

from territory_service.api_keys.models import ApiKey
from territory_service.api_keys.repository import KeyRecord, touch
from territory_service.coalescing import Coalescer
from territory_service.db import utcnow
from territory_service.rulesets.models import RuleSet, RuleSetState
from territory_service.transaction import reading

logger = logging.getLogger(__name__)

# A key's use is written at most this often, so busy keys do not serialise on their row.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Snapshot:
    keys: dict[str, KeyRecord]  # by secret hash; the keys asked for that exist
    active_ruleset: tuple[uuid.UUID, int] | None  # id and resource version


def _active(column: InstrumentedAttribute[Any], name: str) -> Label[Any]:
    return select(column).where(RuleSet.state == RuleSetState.ACTIVE).scalar_subquery().label(name)


# Built once: a statement made per round costs more to build and key for the cache than to run.
# The join from one constant row gives a row even when no key matches, so the active rule set
# always comes back.
_ONE_ROW = select(literal(1).label("one")).subquery()
_SNAPSHOT = (
    select(
        *(getattr(ApiKey, field.name) for field in fields(KeyRecord)),
        _active(RuleSet.id, "active_id"),
        _active(RuleSet.version, "active_version"),
    )
    .select_from(_ONE_ROW)
    .outerjoin(ApiKey, ApiKey.secret_hash.in_(bindparam("secret_hashes", expanding=True)))
)
_KEY_COLUMNS = len(fields(KeyRecord))


async def _record_use(
    connection: AsyncConnection,
    key_ids: list[uuid.UUID],
    *,
    now: dt.datetime,
    older_than: dt.datetime,
) -> None:
    """Best effort: a round answers for every request in it, and none of them should fail
    because `last_used_at` could not be written; the next round tries again."""
    try:
        await touch(connection, key_ids, now=now, older_than=older_than)
    except DBAPIError:
        logger.warning("could not record the use of API keys %s", key_ids, exc_info=True)


def request_reads(engine: AsyncEngine) -> Coalescer[str, Snapshot]:
    """Snapshots by the secret hashes asked for. A round also records the use of the keys it
    found unused for `LAST_USED_RESOLUTION`."""

    async def fetch(secret_hashes: frozenset[str]) -> Snapshot:
        now = utcnow()
        async with reading(engine, resource="api key") as connection:
            rows = (
                await connection.execute(_SNAPSHOT, {"secret_hashes": list(secret_hashes)})
            ).all()
            keys = {
                row.secret_hash: KeyRecord(*row[:_KEY_COLUMNS])
                for row in rows
                if row.id is not None
            }
            older_than = now - LAST_USED_RESOLUTION
            unrecorded = [
                key.id
                for key in keys.values()
                if key.last_used_at is None or key.last_used_at < older_than
            ]
            if unrecorded:
                await _record_use(connection, unrecorded, now=now, older_than=older_than)
        active = None if rows[0].active_id is None else (rows[0].active_id, rows[0].active_version)
        return Snapshot(keys, active)

    return Coalescer(fetch)
