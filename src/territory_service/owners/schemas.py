import uuid

from pydantic import Field

from territory_service.schemas import (
    Capacity,
    ExternalId,
    InputModel,
    Name,
    NotNull,
    OptionalEmail,
    PageOut,
    Reason,
    ResourceOut,
    examples,
)


class OwnerCreate(InputModel):
    model_config = examples(
        {"external_id": "u-1024", "name": "张伟", "email": "zhang.wei@example.com"}
    )

    external_id: ExternalId = Field(description="The CRM's user id; unique.")
    name: Name
    email: OptionalEmail = None
    active: bool = Field(default=True, description="Inactive owners receive no new customers.")
    capacity: Capacity | None = Field(
        default=None, description="Most customers this owner may hold across all territories."
    )


class OwnerUpdate(InputModel):
    external_id: NotNull[ExternalId] = None
    name: NotNull[Name] = None
    email: OptionalEmail = None
    active: NotNull[bool] = None
    capacity: Capacity | None = None


class Owner(ResourceOut):
    id: uuid.UUID
    external_id: str
    name: str
    email: str | None
    active: bool
    capacity: int | None


class OwnerPage(PageOut):
    items: list[Owner]


class Handover(InputModel):
    """Everything an owner holds goes to another owner, or back to each territory's strategy."""

    to_owner_id: uuid.UUID | None = Field(
        default=None,
        description="Who takes the customers, in every territory they are a member of; the "
        "rest (and all, when omitted) go to the member each territory's strategy picks, or to "
        "its pool when no member has room.",
    )
    reason: Reason = Field(description="Why; kept in every customer's history.")
