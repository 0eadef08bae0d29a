import uuid

from pydantic import Field

from territory_service.schemas import (
    Capacity,
    InputModel,
    Name,
    NotNull,
    OptionalCode,
    OptionalLongText,
    PageOut,
    ResourceOut,
    examples,
)
from territory_service.territories.models import DistributionStrategy, MemberRole

Weight = Field(
    default=1, ge=1, le=1000, description="Share of new customers under the weighted strategy."
)


class TerritoryCreate(InputModel):
    model_config = examples(
        {
            "name": "华东",
            "code": "CN-EAST",
            "parent_id": "0191d5a8-4f6e-7c3a-9b1e-2a7f5c3d9e10",
            "strategy": "round_robin",
        }
    )

    name: Name
    code: OptionalCode = Field(default=None, description="Your own unique key, e.g. `CN-EAST`.")
    description: OptionalLongText = None
    parent_id: uuid.UUID | None = Field(default=None, description="Null for a root territory.")
    strategy: DistributionStrategy = Field(
        default=DistributionStrategy.ROUND_ROBIN,
        description="How an owner is chosen among the members for a new customer.",
    )


class TerritoryUpdate(InputModel):
    name: NotNull[Name] = None
    code: OptionalCode = None
    description: OptionalLongText = None
    parent_id: uuid.UUID | None = Field(
        default=None, description="Move the territory; a move that makes a cycle answers 409."
    )
    strategy: NotNull[DistributionStrategy] = None


class Territory(ResourceOut):
    id: uuid.UUID
    name: str
    code: str | None
    description: str | None
    parent_id: uuid.UUID | None
    strategy: DistributionStrategy


class TerritoryPage(PageOut):
    items: list[Territory]


class MemberPut(InputModel):
    role: MemberRole = MemberRole.MEMBER
    weight: int = Weight
    capacity: Capacity | None = Field(
        default=None, description="Most customers this member may hold in this territory."
    )


class Member(ResourceOut):
    territory_id: uuid.UUID
    owner_id: uuid.UUID
    role: MemberRole
    weight: int
    capacity: int | None


class MemberPage(PageOut):
    items: list[Member]
