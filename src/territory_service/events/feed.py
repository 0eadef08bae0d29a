"""The change feed: every ownership event, in order, exactly once to a consumer that follows
the cursor, even while transactions commit out of id order.

Event ids come from a sequence when the row is inserted, so a transaction can commit an event
with a smaller id after others with larger ids were already read. The feed therefore does not
page by id but by `position`, which only committed events get: each read first runs the
sequencer, which (one at a time) gives the committed events that have none the next positions,
in id order. An event that commits late gets a later position, whatever its id. One customer's
events keep their version order: a writer locks the ownership row before it inserts its event,
so a later version is inserted, and sequenced, after the earlier one committed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.errors import InvalidCursor
from territory_service.ownership.models import OwnershipEvent
from territory_service.pagination import decode_cursor, encode_cursor
from territory_service.security.principal import Principal
from territory_service.territories.repository import in_subtrees
from territory_service.transaction import transaction

# Events sequenced per read at most; a larger backlog is worked off over the next reads.
SEQUENCE_BATCH = 10_000
_EVENTS: Table = OwnershipEvent.__table__  # type: ignore[assignment]
_SET_POSITION = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values(position=bindparam("new_position"))
)


async def sequence(session: AsyncSession) -> int:
    """Give committed events without a position the next ones, in id order; how many."""
    async with transaction(session, resource="event"):
        if session.get_bind().dialect.name == "postgresql":
            # One sequencer at a time (SQLite runs one writing transaction at a time anyway).
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('event-feed'))"))
        waiting = list(
            (
                await session.execute(
                    select(_EVENTS.c.id)
                    .where(_EVENTS.c.position.is_(None))
                    .order_by(_EVENTS.c.id)
                    .limit(SEQUENCE_BATCH)
                )
            ).scalars()
        )
        if not waiting:
            return 0
        last = (await session.execute(select(func.max(_EVENTS.c.position)))).scalar()
        first = (last or 0) + 1
        await session.execute(
            _SET_POSITION,
            [{"event_id": id_, "new_position": first + n} for n, id_ in enumerate(waiting)],
        )
        return len(waiting)


async def read_feed(
    session: AsyncSession, *, after: str | None, limit: int, principal: Principal
) -> tuple[Sequence[OwnershipEvent], str]:
    """The events after the cursor, in feed order, and the cursor to continue from (the same
    one when nothing is new, so a consumer polls with it)."""
    position = 0
    if after is not None:
        try:
            decoded = decode_cursor(after)
        except InvalidCursor:
            raise InvalidCursor("after") from None
        if not isinstance(decoded, int) or decoded < 0:
            raise InvalidCursor("after")
        position = decoded
    await sequence(session)
    async with transaction(session, resource="event"):
        statement = (
            select(OwnershipEvent)
            .where(OwnershipEvent.position > position)
            .order_by(OwnershipEvent.position)
            .limit(limit)
        )
        if principal.territory_ids is not None:
            roots = principal.territory_ids
            statement = statement.where(
                in_subtrees(OwnershipEvent.territory_id, roots)  # type: ignore[arg-type]
                | in_subtrees(OwnershipEvent.from_territory_id, roots)  # type: ignore[arg-type]
            )
        events = (await session.execute(statement)).scalars().all()
    last = events[-1].position if events else position
    return events, encode_cursor(last or 0)
