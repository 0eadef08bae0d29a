from typing import Annotated

from fastapi import APIRouter, Query

from territory_service.api.authentication import CustomersRead
from territory_service.api.dependencies import DEFAULT_PAGE_SIZE, LimitQuery, SessionDep
from territory_service.api.problems import problem_responses
from territory_service.events import feed
from territory_service.events.schemas import FeedEvent, FeedPage
from territory_service.pagination import CURSOR_PATTERN

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("", response_model=FeedPage, responses=problem_responses(422))
async def list_events(
    session: SessionDep,
    principal: CustomersRead,
    after: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=CURSOR_PATTERN,
            description="`next_cursor` of the previous read; none: the start.",
        ),
    ] = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> FeedPage:
    """The change feed: every ownership event in order, each exactly once to a consumer that
    keeps passing `next_cursor` as `after`, also while transactions commit out of id order
    (events are placed in the feed when they commit). A key confined to territories sees the
    events into or out of its territories."""
    events, cursor = await feed.read_feed(session, after=after, limit=limit, principal=principal)
    return FeedPage(items=[FeedEvent.model_validate(e) for e in events], next_cursor=cursor)
