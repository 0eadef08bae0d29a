from pydantic import Field

from territory_service.ownership.schemas import OwnershipEventOut
from territory_service.schemas import OutputModel


class FeedEvent(OwnershipEventOut):
    position: int = Field(description="The event's place in the feed.")


class FeedPage(OutputModel):
    items: list[FeedEvent]
    next_cursor: str = Field(
        description="Pass as `after` for the next events; when nothing is new it is the cursor "
        "you sent, so poll with it."
    )
