import datetime as dt
import enum
import uuid
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from territory_service.api.problems import ProblemItem
from territory_service.ownership.models import OwnershipSource
from territory_service.schemas import (
    NUMBER_RANGE,
    BlankIsNone,
    ExternalId,
    InputModel,
    Name,
    NotBlank,
    NotNull,
    Number,
    OneError,
    OptionalShortText,
    OutputModel,
    PageOut,
    Reason,
    ResourceOut,
    Storable,
    Tag,
    Tier,
    UTCTimestamp,
    examples,
    trimmed,
)

MAX_TAGS = 50
MAX_ATTRIBUTES = 50
MAX_BATCH_SIZE = 1000


def _tag_set(tags: list[str]) -> list[str]:
    return sorted(set(tags))


Tags = Annotated[
    list[Tag],
    Field(
        max_length=MAX_TAGS, description="A set of labels; duplicates are dropped, order sorted."
    ),
    AfterValidator(_tag_set),
]
ATTRIBUTE_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"
AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ATTRIBUTE_KEY)]
AttributeValue = Annotated[
    Annotated[str, StringConstraints(max_length=500), Storable] | StrictBool | Number,
    OneError(
        "attribute_value",
        f"must be text of at most 500 characters (no U+0000), a boolean, or {NUMBER_RANGE}",
    ),
]
Attributes = Annotated[
    dict[AttributeKey, AttributeValue],
    Field(
        max_length=MAX_ATTRIBUTES,
        description="Custom facts for rules (`attributes.<key>`): strings, booleans or numbers "
        "(within ±(2^53 - 1), where every integer is exact).",
    ),
]
RegistrationId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        min_length=1,
        max_length=64,
        pattern=r"^[0-9A-Za-z][0-9A-Za-z-]*$",
    ),
]
Source = Annotated[str, trimmed(64), NotBlank]
Employees = Annotated[int, Field(ge=0, le=100_000_000)]
Revenue = Annotated[float, Field(ge=0, le=1e16, allow_inf_nan=False)]
PotentialScore = Annotated[int, Field(ge=0, le=100)]


class CustomerFacts(InputModel):
    """The facts assignment rules read. Blank text means "not known"."""

    country: OptionalShortText = None
    province: OptionalShortText = None
    city: OptionalShortText = None
    district: OptionalShortText = None
    industry: OptionalShortText = None
    employees: Employees | None = None
    annual_revenue: Revenue | None = None
    tier: Annotated[Tier | None, BlankIsNone] = None
    potential_score: PotentialScore | None = None
    registration_id: Annotated[RegistrationId | None, BlankIsNone] = Field(
        default=None, description="统一社会信用代码 or tax id; unique when present."
    )
    parent_id: uuid.UUID | None = Field(default=None, description="The group company's id.")
    last_activity_at: UTCTimestamp | None = Field(
        default=None, description="Last follow-up the CRM reported (with a timezone)."
    )


class CustomerCreate(CustomerFacts):
    model_config = examples(
        {
            "source": "crm-east",
            "external_id": "A-10023",
            "name": "上海华东机械有限公司",
            "province": "上海",
            "city": "上海",
            "industry": "manufacturing",
            "employees": 320,
            "tier": "A",
            "tags": ["key-account"],
            "attributes": {"channel": "partner", "amount": 1200000},
            "registration_id": "91310000MA1K4XXXXX",
        }
    )

    source: Source = Field(description="Which CRM the record comes from.")
    external_id: ExternalId = Field(description="The CRM's own id; unique within `source`.")
    name: Name
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)


class CustomerUpdate(CustomerFacts):
    """Only the fields sent change; `null` clears an optional fact."""

    model_config = examples({"employees": 450, "tier": "A"}, {"industry": None})

    name: NotNull[Name] = None
    tags: NotNull[Tags] = None
    attributes: NotNull[Attributes] = None


class CustomerOwnership(OutputModel):
    territory_id: uuid.UUID
    owner_id: uuid.UUID | None = Field(description="Null: waiting in the territory's pool.")
    source: OwnershipSource
    locked: bool
    version: int
    assigned_at: dt.datetime


class Customer(ResourceOut):
    id: uuid.UUID
    source: str
    external_id: str
    name: str
    country: str | None
    province: str | None
    city: str | None
    district: str | None
    industry: str | None
    employees: int | None
    annual_revenue: float | None
    tier: str | None
    potential_score: int | None
    tags: list[str]
    attributes: dict[str, Any]
    registration_id: str | None
    parent_id: uuid.UUID | None
    last_activity_at: dt.datetime | None
    ownership: CustomerOwnership | None = Field(
        description="Current owner; null until the customer has been resolved."
    )


class CustomerPage(PageOut):
    items: list[Customer]


class CustomerBatch(InputModel):
    items: Annotated[
        # Items are validated one by one by the service, so that one bad item fails alone.
        list[Annotated[Any, WithJsonSchema({"$ref": "#/components/schemas/CustomerCreate"})]],
        Field(min_length=1, max_length=MAX_BATCH_SIZE),
    ] = Field(
        description=f"1 to {MAX_BATCH_SIZE} customers, matched on (`source`, `external_id`). "
        "An existing customer gets the fields the item sends; fields left out keep their value."
    )


class BatchItemStatus(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ERROR = "error"


class BatchItemResult(OutputModel):
    index: int = Field(description="Position of the item in the request.")
    status: BatchItemStatus
    id: uuid.UUID | None = None
    version: int | None = None
    detail: str | None = Field(default=None, description="Why the item failed.")
    errors: list[ProblemItem] | None = None


class CustomerBatchResult(OutputModel):
    created: int
    updated: int
    unchanged: int
    failed: int
    items: list[BatchItemResult]


class DuplicateReason(enum.StrEnum):
    REGISTRATION_ID = "registration_id"
    NORMALIZED_NAME = "normalized_name"
    SIMILAR_NAME = "similar_name"


class Duplicate(OutputModel):
    """Another customer that looks like the same company."""

    id: uuid.UUID
    source: str
    external_id: str
    name: str
    registration_id: str | None
    reasons: list[DuplicateReason] = Field(
        description="Why it looks like the same company: the same `registration_id` (case and "
        "hyphens folded), the same normalized name (legal suffixes, punctuation, width, case "
        "and spacing folded), or a name at least `min_similarity` alike."
    )
    similarity: float = Field(
        ge=0, le=1, description="How alike the normalized names are (1: the same)."
    )
    ownership: CustomerOwnership | None = Field(description="Its current owner and territory.")
    same_owner: bool = Field(
        description="Both are with the same owner (or both without one); when not, a "
        "`duplicate_customer` conflict is logged for a same-name or same-registration pair."
    )


class DuplicateList(OutputModel):
    customer_id: uuid.UUID
    normalized_name: str = Field(description="The customer's name as duplicates compare it.")
    items: list[Duplicate] = Field(
        description="Same registration id or normalized name first (oldest first), then "
        "similar names (most alike first)."
    )


class CustomerMerge(InputModel):
    customer_id: uuid.UUID = Field(description="The customer folded into this one; it is removed.")
    reason: Reason | None = Field(
        default=None, description="Why; kept in the merged customer's last ownership event."
    )
