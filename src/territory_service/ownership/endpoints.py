import uuid

from fastapi import APIRouter, Depends, Request, Response

from territory_service.api.authentication import CustomersRead, TransfersApprove, active_ruleset
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    LimitQuery,
    RequiredVersionDep,
    SessionDep,
    set_etag,
)
from territory_service.api.direct_route import DirectRoute
from territory_service.api.problems import problem_responses
from territory_service.audit.middleware import mark_unchanging
from territory_service.customers.schemas import Attributes as AttributesField
from territory_service.customers.schemas import CustomerFacts, Source, Tags
from territory_service.ownership import assignment, service
from territory_service.ownership.previews import Previews
from territory_service.ownership.schemas import (
    Decision,
    Explanation,
    OwnershipAssign,
    OwnershipEventOut,
    OwnershipEventPage,
    OwnershipOut,
    OwnershipUnlock,
)
from territory_service.schemas import ExternalId, Name

router = APIRouter(tags=["ownership"])


class ResolveRequest(CustomerFacts):
    """The facts of a customer that need not exist: every field is optional."""

    name: Name | None = None
    source: Source | None = None
    external_id: ExternalId | None = None
    tags: Tags = []
    attributes: AttributesField = {}


@router.get(
    "/v1/customers/{customer_id}/ownership",
    response_model=OwnershipOut,
    responses=problem_responses(404),
)
async def get_ownership(
    customer_id: uuid.UUID, session: SessionDep, principal: CustomersRead, response: Response
) -> OwnershipOut:
    """The customer's one current owner (404 until it has been resolved)."""
    ownership = await service.get_ownership(session, customer_id=customer_id, principal=principal)
    set_etag(response, ownership.version)
    return OwnershipOut.model_validate(ownership)


@router.put(
    "/v1/customers/{customer_id}/ownership",
    response_model=OwnershipOut,
    responses=problem_responses(400, 404, 409, 412, 428),
)
async def assign_ownership(
    customer_id: uuid.UUID,
    body: OwnershipAssign,
    session: SessionDep,
    principal: TransfersApprove,
    expected: RequiredVersionDep,
    response: Response,
) -> OwnershipOut:
    """Assign the customer by hand to an owner (an active member of the territory) or to a
    territory's pool, and lock it there: rules no longer move it (a `locked_drift` conflict is
    logged when they disagree). Needs `If-Match` with the ownership's ETag: 428 without, 412
    when it changed. The territory defaults to the current one; give `owner_id`,
    `territory_id` or both (422 `validation-error` when neither)."""
    ownership = await assignment.assign_manually(
        session,
        customer_id=customer_id,
        territory_id=body.territory_id,
        owner_id=body.owner_id,
        reason=body.reason,
        expected=expected,
        principal=principal,
    )
    set_etag(response, ownership.version)
    return OwnershipOut.model_validate(ownership)


@router.post(
    "/v1/customers/{customer_id}/ownership/unlock",
    response_model=OwnershipOut,
    responses=problem_responses(400, 404, 409, 412, 428),
)
async def unlock_ownership(
    customer_id: uuid.UUID,
    session: SessionDep,
    principal: TransfersApprove,
    expected: RequiredVersionDep,
    response: Response,
    body: OwnershipUnlock | None = None,
) -> OwnershipOut:
    """Hand a locked ownership back to the rules: it is resolved at once with the active rule
    set (and stays where it is when none is active). Needs `If-Match` like assignment; 409 when
    the ownership is not locked."""
    ownership = await assignment.unlock(
        session,
        customer_id=customer_id,
        reason=body.reason if body else None,
        expected=expected,
        principal=principal,
    )
    set_etag(response, ownership.version)
    return OwnershipOut.model_validate(ownership)


@router.get(
    "/v1/customers/{customer_id}/explain",
    response_model=Explanation,
    responses=problem_responses(404, 409),
)
async def explain_ownership(
    customer_id: uuid.UUID, session: SessionDep, principal: CustomersRead
) -> Explanation:
    """Why the customer belongs where it does: every matching rule with its priority, the
    winner, and the lock, group, stability or strategy decision that followed."""
    return await service.explain(session, customer_id=customer_id, principal=principal)


@router.get(
    "/v1/customers/{customer_id}/history",
    response_model=OwnershipEventPage,
    responses=problem_responses(404),
)
async def get_ownership_history(
    customer_id: uuid.UUID,
    session: SessionDep,
    principal: CustomersRead,
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> OwnershipEventPage:
    """Every ownership change of the customer, oldest first."""
    page = await service.history(
        session, customer_id=customer_id, limit=limit, cursor=cursor, principal=principal
    )
    return OwnershipEventPage(
        items=[OwnershipEventOut.model_validate(e) for e in page.items],
        next_cursor=page.next_cursor,
    )


async def resolve_customer(
    body: ResolveRequest,
    request: Request,
    principal: CustomersRead,  # noqa: ARG001 (checks the scope; reads the active rule set)
) -> Decision:
    """Who would own a customer with these facts? Stateless: nothing is stored. For lead
    capture forms and previews; round_robin and weighted territories may give a stored customer
    another member of the same territory. The active rule set is looked up on every call;
    territories, members and their load may be up to `PREVIEW_CACHE_SECONDS` old."""
    previews: Previews = request.app.state.previews
    return await previews.resolve(body, active_ruleset=active_ruleset(request))


# The hottest operation: lead capture forms call it for every visitor (see DirectRoute).
router.add_api_route(
    "/v1/resolve",
    resolve_customer,
    methods=["POST"],
    response_model=Decision,
    responses=problem_responses(409),
    dependencies=[Depends(mark_unchanging)],
    route_class_override=DirectRoute,
)
