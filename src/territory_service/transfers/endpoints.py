import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from territory_service.api.authentication import CustomersRead, TransfersApprove, TransfersWrite
from territory_service.api.dependencies import (
    DEFAULT_PAGE_SIZE,
    CursorQuery,
    ExpectedVersionDep,
    LimitQuery,
    SessionDep,
    set_etag,
)
from territory_service.api.problems import problem_responses
from territory_service.transfers import service
from territory_service.transfers.models import Transfer as TransferRow
from territory_service.transfers.models import TransferItem as TransferItemRow
from territory_service.transfers.models import TransferStatus
from territory_service.transfers.repository import TransferFilter
from territory_service.transfers.schemas import (
    Transfer,
    TransferCreate,
    TransferDecision,
    TransferPage,
    TransferSummary,
)

router = APIRouter(prefix="/v1/transfers", tags=["transfers"])


def transfer_out(
    response: Response, transfer: TransferRow, items: list[TransferItemRow]
) -> Transfer:
    set_etag(response, transfer.version)
    return Transfer.model_validate(
        {**TransferSummary.model_validate(transfer).model_dump(), "items": items}
    )


async def transfer_filter(
    status: Annotated[
        TransferStatus | None, Query(description="Only transfers in this state.")
    ] = None,
    owner_id: Annotated[
        uuid.UUID | None,
        Query(description="Transfers to this owner, or moving a customer away from them."),
    ] = None,
    territory_id: Annotated[
        uuid.UUID | None,
        Query(description="Transfers moving a customer out of or into this territory (or below)."),
    ] = None,
) -> TransferFilter:
    return TransferFilter(status=status, owner_id=owner_id, territory_id=territory_id)


@router.post(
    "",
    status_code=201,
    response_model=Transfer,
    responses=problem_responses(403),
)
async def create_transfer(
    body: TransferCreate, session: SessionDep, principal: TransfersWrite, response: Response
) -> Transfer:
    """Request moving 1 to 1,000 customers to another owner; it waits, `pending`, for an
    approver. Each customer's current ownership version is recorded: if it changes before the
    approval, that customer is not moved. Refused as a whole (422, one error per customer)
    when a customer is unknown, has no ownership yet, already belongs to the target owner, or
    lies in a territory the target owner is not a member of (give `to_territory_id`)."""
    transfer, items = await service.request_transfer(session, data=body, principal=principal)
    response.headers["Location"] = f"/v1/transfers/{transfer.id}"
    return transfer_out(response, transfer, items)


@router.get("", response_model=TransferPage, responses=problem_responses())
async def list_transfers(
    session: SessionDep,
    principal: CustomersRead,
    filters: Annotated[TransferFilter, Depends(transfer_filter)],
    limit: LimitQuery = DEFAULT_PAGE_SIZE,
    cursor: CursorQuery = None,
) -> TransferPage:
    """List transfers, oldest first, without their items; filters combine with AND."""
    page = await service.list_transfers(
        session, filters=filters, limit=limit, cursor=cursor, principal=principal
    )
    return TransferPage(
        items=[TransferSummary.model_validate(t) for t in page.items], next_cursor=page.next_cursor
    )


@router.get("/{transfer_id}", response_model=Transfer, responses=problem_responses(404))
async def get_transfer(
    transfer_id: uuid.UUID, session: SessionDep, principal: CustomersRead, response: Response
) -> Transfer:
    """A transfer with every customer in it and, once decided, what happened to each."""
    transfer, items = await service.get_transfer(
        session, transfer_id=transfer_id, principal=principal
    )
    return transfer_out(response, transfer, items)


@router.post(
    "/{transfer_id}/approve",
    response_model=Transfer,
    responses=problem_responses(403, 404, 409, 412),
)
async def approve_transfer(
    transfer_id: uuid.UUID,
    session: SessionDep,
    principal: TransfersApprove,
    expected: ExpectedVersionDep,
    response: Response,
    body: TransferDecision | None = None,
) -> Transfer:
    """Approve and apply a pending transfer in one step: it becomes `applied`. Each customer
    still at the ownership version recorded in the request moves to the target owner, locked
    (rules no longer move it), its group following; any other item is `failed` with the
    reason, and the customer stays where it is. Acting for a person (`X-Act-As`), that person
    must manage every target territory (403 otherwise). 409 when already decided."""
    transfer, items = await service.approve_transfer(
        session,
        transfer_id=transfer_id,
        data=body or TransferDecision(),
        expected=expected,
        principal=principal,
    )
    return transfer_out(response, transfer, items)


@router.post(
    "/{transfer_id}/reject",
    response_model=Transfer,
    responses=problem_responses(403, 404, 409, 412),
)
async def reject_transfer(
    transfer_id: uuid.UUID,
    session: SessionDep,
    principal: TransfersApprove,
    expected: ExpectedVersionDep,
    response: Response,
    body: TransferDecision | None = None,
) -> Transfer:
    """Reject a pending transfer: nothing moves. Same approver rules as approving."""
    transfer, items = await service.close_transfer(
        session,
        transfer_id=transfer_id,
        status=TransferStatus.REJECTED,
        data=body or TransferDecision(),
        expected=expected,
        principal=principal,
    )
    return transfer_out(response, transfer, items)


@router.post(
    "/{transfer_id}/cancel",
    response_model=Transfer,
    responses=problem_responses(403, 404, 409, 412),
)
async def cancel_transfer(
    transfer_id: uuid.UUID,
    session: SessionDep,
    principal: TransfersWrite,
    expected: ExpectedVersionDep,
    response: Response,
    body: TransferDecision | None = None,
) -> Transfer:
    """Withdraw a pending transfer: nothing moves."""
    transfer, items = await service.close_transfer(
        session,
        transfer_id=transfer_id,
        status=TransferStatus.CANCELLED,
        data=body or TransferDecision(),
        expected=expected,
        principal=principal,
    )
    return transfer_out(response, transfer, items)
