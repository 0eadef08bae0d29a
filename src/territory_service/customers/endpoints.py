import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AwareDatetime

from territory_service.api.authentication import CustomersRead, CustomersWrite
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    ExpectedVersionDep,
    LimitQuery,
    SessionDep,
    set_etag,
    set_location,
)
from territory_service.api.problems import problem_responses
from territory_service.customers import batch, duplicates, merge, service
from territory_service.customers.repository import CustomerFilter
from territory_service.customers.schemas import (
    Customer,
    CustomerBatch,
    CustomerBatchResult,
    CustomerCreate,
    CustomerMerge,
    CustomerPage,
    CustomerUpdate,
    DuplicateList,
)
from territory_service.schemas import StorableText, Tag

router = APIRouter(prefix="/v1/customers", tags=["customers"])

FilterText = Annotated[StorableText | None, Query(max_length=200)]


async def customer_filter(
    source: FilterText = None,
    external_id: Annotated[
        StorableText | None,
        Query(
            max_length=200,
            description="The CRM's id; also finds the customer a record with this id was "
            "merged into.",
        ),
    ] = None,
    province: FilterText = None,
    city: FilterText = None,
    industry: FilterText = None,
    tier: FilterText = None,
    tag: Annotated[Tag | None, Query(description="Customers with this tag.")] = None,
    parent_id: Annotated[
        uuid.UUID | None, Query(description="Subsidiaries of this group company.")
    ] = None,
    territory_id: Annotated[
        uuid.UUID | None, Query(description="Customers owned in this territory.")
    ] = None,
    include_subterritories: Annotated[
        bool, Query(description="With `territory_id`: also its descendants.")
    ] = True,
    owner_id: Annotated[uuid.UUID | None, Query(description="Customers of this owner.")] = None,
    updated_since: Annotated[
        AwareDatetime | None, Query(description="Changed at or after this time (with timezone).")
    ] = None,
) -> CustomerFilter:
    return CustomerFilter(
        source=source,
        external_id=external_id,
        province=province,
        city=city,
        industry=industry,
        tier=tier,
        tag=tag,
        parent_id=parent_id,
        territory_id=territory_id,
        include_subterritories=include_subterritories,
        owner_id=owner_id,
        updated_since=updated_since,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Customer,
    responses=problem_responses(409),
)
async def create_customer(
    body: CustomerCreate, session: SessionDep, principal: CustomersWrite, response: Response
) -> Customer:
    """Add a customer to the pool. 409 names the customer that already has the same
    (`source`, `external_id`) or `registration_id`, or that a record with this (`source`,
    `external_id`) was merged into. Duplicates with another owner (same normalized name or
    registration id) are logged as a `duplicate_customer` conflict."""
    customer = await service.create_customer(session, data=body, principal=principal)
    set_location(response, f"/v1/customers/{customer.id}", customer.version)
    return Customer.model_validate(customer)


@router.get("", response_model=CustomerPage, responses=problem_responses())
async def list_customers(
    session: SessionDep,
    principal: CustomersRead,
    filters: Annotated[CustomerFilter, Depends(customer_filter)],
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> CustomerPage:
    """List customers in creation order; filters combine with AND."""
    page = await service.list_customers(
        session, filters=filters, limit=limit, cursor=cursor, principal=principal
    )
    return CustomerPage(
        items=[Customer.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.post("/batch", response_model=CustomerBatchResult, responses=problem_responses(409))
async def upsert_customers(
    body: CustomerBatch, session: SessionDep, principal: CustomersWrite
) -> CustomerBatchResult:
    """Create or update up to 1,000 customers matched on (`source`, `external_id`).

    Each item gets its own result (`created`, `updated`, `unchanged` or `error` with the reason);
    a bad item does not stop the others."""
    return await batch.upsert_customers(session, items=body.items, principal=principal)


@router.get("/{customer_id}", response_model=Customer, responses=problem_responses(404))
async def get_customer(
    customer_id: uuid.UUID, session: SessionDep, principal: CustomersRead, response: Response
) -> Customer:
    """Get one customer with its current ownership."""
    customer = await service.get_customer(session, customer_id=customer_id, principal=principal)
    set_etag(response, customer.version)
    return Customer.model_validate(customer)


@router.patch(
    "/{customer_id}", response_model=Customer, responses=problem_responses(400, 404, 409, 412)
)
async def update_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    session: SessionDep,
    principal: CustomersWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> Customer:
    """Change a customer's facts. Only the fields sent change; `null` clears an optional one."""
    customer = await service.update_customer(
        session, customer_id=customer_id, data=body, expected=expected, principal=principal
    )
    set_etag(response, customer.version)
    return Customer.model_validate(customer)


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 404, 409, 412),
)
async def delete_customer(
    customer_id: uuid.UUID,
    session: SessionDep,
    principal: CustomersWrite,
    expected: ExpectedVersionDep,
) -> None:
    """Remove a customer from the pool; its ownership history is kept. A group company with
    subsidiaries cannot be deleted (409)."""
    await service.delete_customer(
        session, customer_id=customer_id, expected=expected, principal=principal
    )


@router.get(
    "/{customer_id}/duplicates", response_model=DuplicateList, responses=problem_responses(404)
)
async def list_duplicates(
    customer_id: uuid.UUID,
    session: SessionDep,
    principal: CustomersRead,
    min_similarity: Annotated[
        float | None,
        Query(
            ge=0,
            le=1,
            description="Also list customers whose normalized name is at least this alike "
            "(0 to 1; 0.85 finds `上海华东机械` for `华东机械`). Reads every name: slower.",
        ),
    ] = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
) -> DuplicateList:
    """Customers that look like the same company (撞单): the same registration id (case and
    hyphens folded) or the same normalized name (legal suffixes such as 有限公司 / 集团 /
    Co., Ltd., punctuation, full-width forms, case and spacing folded), and with
    `min_similarity` similar names; each with why and its current owner. A key confined to
    territories sees only the customers in them."""
    return await duplicates.list_duplicates(
        session,
        customer_id=customer_id,
        min_similarity=min_similarity,
        limit=limit,
        principal=principal,
    )


@router.post(
    "/{customer_id}/merge",
    response_model=Customer,
    responses=problem_responses(400, 403, 404, 409, 412),
)
async def merge_customer(
    customer_id: uuid.UUID,
    body: CustomerMerge,
    session: SessionDep,
    principal: CustomersWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> Customer:
    """Fold another record of the same company (`customer_id` in the body) into this one.

    This customer survives with its facts and its ownership (its version goes up); the other
    is removed: its ownership history stays, closed by an event with source `merge`; its
    subsidiaries move here; its (`source`, `external_id`) resolves here from now on (batch
    upserts update this customer, creating it again answers 409); its open
    `duplicate_customer` conflicts are resolved. `If-Match` (optional) is this customer's
    version. 422 `invalid-merge` for a customer merged into itself, 409 `hierarchy-cycle`
    when this customer is a subsidiary of the other, 409 `already-merged` when the other was
    merged already, 403 `out-of-scope` when the other's subsidiaries lie outside the key's
    territories."""
    customer = await merge.merge_customers(
        session,
        survivor_id=customer_id,
        merged_id=body.customer_id,
        reason=body.reason,
        expected=expected,
        principal=principal,
    )
    set_etag(response, customer.version)
    return Customer.model_validate(customer)
