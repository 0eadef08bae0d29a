import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from territory_service.api.authentication import (
    CustomersRead,
    CustomersWrite,
    PoolClaim,
    TerritoriesRead,
    TerritoriesWrite,
    TransfersApprove,
)
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    ExpectedVersionDep,
    LimitQuery,
    SessionDep,
    set_etag,
    set_location,
)
from territory_service.api.problems import problem_responses, service_problem
from territory_service.customers.schemas import Customer
from territory_service.errors import ServiceError
from territory_service.jobs.schemas import Job
from territory_service.ownership.schemas import OwnershipOut
from territory_service.pool import claims, reclaim, service
from territory_service.pool.inherited_rules import EffectiveRules
from territory_service.pool.models import PoolRules
from territory_service.pool.schemas import (
    Activity,
    BatchClaim,
    BatchClaimResult,
    Claim,
    ClaimResult,
    DueCustomer,
    DuePage,
    EffectivePoolRules,
    PoolPage,
    PoolRulesOut,
    PoolRulesPut,
    Release,
)
from territory_service.pool.service import PoolFilter
from territory_service.schemas import ShortText, Tag, Tier

router = APIRouter(tags=["pool"])


def rules_out(
    territory_id: uuid.UUID, own: PoolRules | None, effective: EffectiveRules, response: Response
) -> PoolRulesOut:
    version = 0 if own is None else own.version
    set_etag(response, version)
    return PoolRulesOut(
        territory_id=territory_id,
        own=EffectivePoolRules.model_validate(own or EffectiveRules(), from_attributes=True),
        effective=EffectivePoolRules.model_validate(effective, from_attributes=True),
        version=version,
    )


@router.get(
    "/v1/territories/{territory_id}/pool-rules",
    response_model=PoolRulesOut,
    responses=problem_responses(404),
)
async def get_pool_rules(
    territory_id: uuid.UUID, session: SessionDep, principal: TerritoriesRead, response: Response
) -> PoolRulesOut:
    """The territory's own pool rules (公海规则) and the rules in force there."""
    own, effective = await service.get_pool_rules(
        session, territory_id=territory_id, principal=principal
    )
    return rules_out(territory_id, own, effective, response)


@router.put(
    "/v1/territories/{territory_id}/pool-rules",
    response_model=PoolRulesOut,
    responses=problem_responses(400, 404, 409, 412),
)
async def put_pool_rules(
    territory_id: uuid.UUID,
    body: PoolRulesPut,
    session: SessionDep,
    principal: TerritoriesWrite,
    expected: ExpectedVersionDep,
    response: Response,
) -> PoolRulesOut:
    """Set the territory's own pool rules, all at once; a field left out or null is inherited
    from the territory above. Child territories inherit these unless they set their own."""
    own, effective = await service.put_pool_rules(
        session, territory_id=territory_id, data=body, expected=expected, principal=principal
    )
    return rules_out(territory_id, own, effective, response)


async def pool_filter(
    tier: Annotated[Tier | None, Query()] = None,
    province: Annotated[ShortText | None, Query()] = None,
    industry: Annotated[ShortText | None, Query()] = None,
    tag: Annotated[Tag | None, Query()] = None,
    include_subterritories: Annotated[
        bool, Query(description="Also the pools of the territories below.")
    ] = False,
) -> PoolFilter:
    return PoolFilter(
        tier=tier,
        province=province,
        industry=industry,
        tag=tag,
        include_subterritories=include_subterritories,
    )


@router.get(
    "/v1/territories/{territory_id}/pool",
    response_model=PoolPage,
    responses=problem_responses(404),
)
async def list_pool(
    territory_id: uuid.UUID,
    session: SessionDep,
    principal: CustomersRead,
    filters: Annotated[PoolFilter, Depends(pool_filter)],
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> PoolPage:
    """Customers waiting unowned in the territory's pool (公海), to be claimed."""
    page = await service.list_pool(
        session,
        territory_id=territory_id,
        filters=filters,
        limit=limit,
        cursor=cursor,
        principal=principal,
    )
    return PoolPage(
        items=[Customer.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/v1/customers/{customer_id}/claim",
    response_model=OwnershipOut,
    responses=problem_responses(400, 403, 404, 409, 412),
)
async def claim_customer(
    customer_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: PoolClaim,
    expected: ExpectedVersionDep,
    response: Response,
    body: Claim | None = None,
) -> OwnershipOut:
    """Claim a customer from its territory's pool for an owner (a member of the territory),
    locking the ownership. Of concurrent claims exactly one wins; the others answer 409
    `customer-taken` and the contention is logged as a `claim_race` conflict. Other 409s:
    `not-in-pool`, `pool-limit-reached` (holding or daily limit), `claim-cooldown`."""
    ownership = await claims.claim(
        session,
        customer_id=customer_id,
        owner_id=body.owner_id if body else None,
        expected=expected,
        principal=principal,
        now=request.app.state.clock(),
        utc_offset_hours=request.app.state.settings.pool_day_utc_offset_hours,
    )
    set_etag(response, ownership.version)
    return OwnershipOut.model_validate(ownership)


@router.post("/v1/pool/claims", response_model=BatchClaimResult, responses=problem_responses(403))
async def claim_customers(
    body: BatchClaim, request: Request, session: SessionDep, principal: PoolClaim
) -> BatchClaimResult:
    """Claim up to 100 customers for one owner, each on its own: one result per customer, in
    order, with the problem a single claim would answer when it fails. Limits count the claims
    made earlier in the same batch."""
    items = []
    for customer_id in body.customer_ids:
        try:
            ownership = await claims.claim(
                session,
                customer_id=customer_id,
                owner_id=body.owner_id,
                expected=None,
                principal=principal,
                now=request.app.state.clock(),
                utc_offset_hours=request.app.state.settings.pool_day_utc_offset_hours,
            )
        except ServiceError as exc:
            if exc.status == 403:
                raise
            problem = service_problem(request, exc)
            items.append(
                ClaimResult(
                    customer_id=customer_id, status=exc.status, version=None, problem=problem
                )
            )
            continue
        items.append(
            ClaimResult(
                customer_id=customer_id, status=200, version=ownership.version, problem=None
            )
        )
    return BatchClaimResult(items=items)


@router.post(
    "/v1/customers/{customer_id}/release",
    response_model=OwnershipOut,
    responses=problem_responses(400, 403, 404, 409, 412),
)
async def release_customer(
    customer_id: uuid.UUID,
    body: Release,
    session: SessionDep,
    principal: PoolClaim,
    expected: ExpectedVersionDep,
    response: Response,
) -> OwnershipOut:
    """Give a customer back to its territory's pool, with a reason; it waits there until
    claimed (rules do not hand it out). 409 `not-the-owner` when someone else owns it."""
    ownership = await claims.release(
        session,
        customer_id=customer_id,
        owner_id=body.owner_id,
        reason=body.reason,
        expected=expected,
        principal=principal,
    )
    set_etag(response, ownership.version)
    return OwnershipOut.model_validate(ownership)


@router.post(
    "/v1/customers/{customer_id}/activity",
    response_model=Customer,
    responses=problem_responses(404),
)
async def report_activity(
    customer_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CustomersWrite,
    response: Response,
    body: Activity | None = None,
) -> Customer:
    """The CRM reports a follow-up (a call, a visit): `last_activity_at` moves to it, which
    restarts the pool's reclaim clock. A report older than the last one changes nothing."""
    customer = await service.report_activity(
        session,
        customer_id=customer_id,
        at=body.at if body else None,
        now=request.app.state.clock(),
        principal=principal,
    )
    set_etag(response, customer.version)
    return Customer.model_validate(customer)


@router.get("/v1/pool/due", response_model=DuePage, responses=problem_responses())
async def list_due(
    request: Request,
    session: SessionDep,
    principal: CustomersRead,
    owner_id: Annotated[uuid.UUID | None, Query(description="Only this owner's customers.")] = None,
    territory_id: Annotated[
        uuid.UUID | None, Query(description="Only customers in this territory or below.")
    ] = None,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> DuePage:
    """Owned customers the automatic reclaim will take back within their territory's reminder
    window (or already overdue), with when: for reminding each owner to follow up."""
    page = await reclaim.due_page(
        session,
        now=request.app.state.clock(),
        owner_id=owner_id,
        territory_id=territory_id,
        limit=limit,
        cursor=cursor,
        principal=principal,
    )
    return DuePage(
        items=[DueCustomer.model_validate(d, from_attributes=True) for d in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/v1/pool/reclaim",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Job,
    responses=problem_responses(403, 409),
)
async def run_reclaim(
    request: Request, session: SessionDep, principal: TransfersApprove, response: Response
) -> Job:
    """Run the reclaim rules now, as a job (202, `Location: /v1/jobs/{id}`); the service also
    runs them on a schedule. One run at a time, scheduled or asked for: while one is
    unfinished this answers 409 `reclaim-running` with its `job_id`. Each due customer returns
    to its territory's pool once, with its event. Needs an unconfined key."""
    job = await reclaim.start_reclaim(session, now=request.app.state.clock(), principal=principal)
    set_location(response, f"/v1/jobs/{job.id}", job.version)
    return Job.of(job)
