"""Transfers (归属变更): a request to move customers to another owner, decided by an approver.

Requesting records, per customer, the ownership version it was based on. Approving applies the
whole transfer in one transaction: each customer whose ownership is still at that version moves
(locked, source `transfer`, with its event, its group following); any other is reported as a
failed item and left where it is. A connection lost mid-approval therefore leaves all or
nothing, and the approval can simply be retried.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.api.problems import json_pointer
from territory_service.conflicts.recorder import record_signals
from territory_service.customers.repository import CustomerRepository
from territory_service.db import utcnow
from territory_service.engine.resolution import ConflictSignal
from territory_service.errors import Conflict, Forbidden, OutOfScope, ServiceError
from territory_service.ownership.assignment import check_target, share_locked_owner
from territory_service.ownership.groups import follow_group
from territory_service.ownership.models import OwnershipSource
from territory_service.ownership.repository import OwnershipRepository
from territory_service.pagination import Page
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.security.principal import Principal
from territory_service.territories.models import MemberRole, TerritoryMember
from territory_service.territories.repository import TerritoryRepository
from territory_service.transaction import transaction
from territory_service.transfers.models import (
    Transfer,
    TransferItem,
    TransferItemStatus,
    TransferStatus,
)
from territory_service.transfers.repository import TransferFilter, TransferRepository
from territory_service.transfers.schemas import TransferCreate, TransferDecision


class TransferRefused(ServiceError):
    """Some customers of a requested transfer cannot go to the target; nothing was recorded."""

    status = 422
    slug = "transfer-refused"
    title = "Some customers cannot be transferred"


class TransferNotPending(Conflict):
    slug = "transfer-not-pending"
    title = "The transfer has already been decided"

    def __init__(self, transfer: Transfer) -> None:
        super().__init__(
            f"transfer {transfer.id} is {transfer.status.value}, not pending",
            transfer_id=str(transfer.id),
            transfer_status=transfer.status.value,
        )


def _repository(session: AsyncSession, principal: Principal) -> TransferRepository:
    return TransferRepository(session, roots=principal.territory_ids)


async def _memberships(session: AsyncSession, owner_id: uuid.UUID) -> dict[uuid.UUID, MemberRole]:
    rows = await session.execute(
        select(TerritoryMember.territory_id, TerritoryMember.role).where(
            TerritoryMember.owner_id == owner_id
        )
    )
    return {territory_id: role for territory_id, role in rows}  # noqa: C416 (rows of two)


async def request_transfer(
    session: AsyncSession, *, data: TransferCreate, principal: Principal
) -> tuple[Transfer, list[TransferItem]]:
    async with transaction(session, resource="transfer"):
        visible = await CustomerRepository(session, roots=principal.territory_ids).existing_ids(
            set(data.customer_ids)
        )
        current = await OwnershipRepository(session).of_customers(visible)
        errors: list[dict[str, Any]] = []
        for index, customer_id in enumerate(data.customer_ids):
            if customer_id not in visible:
                errors.append(_item_error(index, "customer does not exist"))
            elif customer_id not in current:
                errors.append(_item_error(index, "customer has no ownership yet"))
        if errors:
            raise TransferRefused(f"{len(errors)} customer(s) cannot be transferred", errors=errors)
        await check_target(
            session,
            territory_id=data.to_territory_id,
            owner_id=data.to_owner_id,
            principal=principal,
            owner_field="to_owner_id",
            territory_field="to_territory_id",
        )
        memberships = await _memberships(session, data.to_owner_id)
        transfer = Transfer(
            to_owner_id=data.to_owner_id,
            reason=data.reason,
            item_count=len(data.customer_ids),
            requested_by_key_id=principal.key_id,
            requested_by_owner_id=principal.acting_owner.id if principal.acting_owner else None,
        )
        session.add(transfer)
        await session.flush()
        items = []
        for index, customer_id in enumerate(data.customer_ids):
            ownership = current[customer_id]
            territory_id = data.to_territory_id or ownership.territory_id
            if territory_id not in memberships:
                errors.append(
                    _item_error(
                        index,
                        f"the target owner is not a member of territory {territory_id}; "
                        "give to_territory_id or add them to it",
                    )
                )
            elif (ownership.territory_id, ownership.owner_id) == (territory_id, data.to_owner_id):
                errors.append(_item_error(index, "the target owner already owns this customer"))
            items.append(
                TransferItem(
                    transfer_id=transfer.id,
                    customer_id=customer_id,
                    expected_version=ownership.version,
                    from_territory_id=ownership.territory_id,
                    from_owner_id=ownership.owner_id,
                    to_territory_id=territory_id,
                )
            )
        if errors:
            raise TransferRefused(f"{len(errors)} customer(s) cannot be transferred", errors=errors)
        session.add_all(items)
    return transfer, sorted(items, key=lambda item: item.customer_id)


def _item_error(index: int, detail: str) -> dict[str, Any]:
    return {"pointer": json_pointer("customer_ids", index), "detail": detail}


async def get_transfer(
    session: AsyncSession, *, transfer_id: uuid.UUID, principal: Principal
) -> tuple[Transfer, list[TransferItem]]:
    async with transaction(session, resource="transfer"):
        repository = _repository(session, principal)
        transfer = await repository.get_or_raise(transfer_id)
        return transfer, await repository.items(transfer_id)


async def list_transfers(
    session: AsyncSession,
    *,
    filters: TransferFilter,
    limit: int,
    cursor: str | None,
    principal: Principal,
) -> Page[Transfer]:
    async with transaction(session, resource="transfer"):
        return await _repository(session, principal).page(filters, limit=limit, cursor=cursor)


async def _pending(
    session: AsyncSession,
    transfer_id: uuid.UUID,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> tuple[Transfer, list[TransferItem]]:
    """The transfer, locked, at the expected version and still pending, with its items."""
    repository = _repository(session, principal)
    transfer = await repository.get_or_raise(transfer_id, for_update=True)
    check_expected(expected, "transfer", transfer.version)
    if transfer.status is not TransferStatus.PENDING:
        raise TransferNotPending(transfer)
    items = await repository.items(transfer_id)
    if principal.territory_ids is not None:
        # A confined key sees a transfer that touches its territories, but decides only one
        # that moves customers wholly within them.
        places = {t for item in items for t in (item.from_territory_id, item.to_territory_id)}
        scoped = TerritoryRepository(session, roots=principal.territory_ids)
        if places - {t.id for t in await scoped.by_ids(places)}:
            raise OutOfScope("the transfer moves customers outside this key's territories")
    return transfer, items


async def _check_approver(
    session: AsyncSession, items: list[TransferItem], principal: Principal
) -> None:
    """A key with the approve scope decides for itself; acting for a person (X-Act-As), that
    person must manage every territory the customers go to (or one above it)."""
    acting = principal.acting_owner
    if acting is None:
        return
    managed = {
        territory_id
        for territory_id, role in (await _memberships(session, acting.id)).items()
        if role is MemberRole.MANAGER
    }
    targets = {item.to_territory_id for item in items}
    reachable = (
        {t.id for t in await TerritoryRepository(session, roots=frozenset(managed)).by_ids(targets)}
        if managed
        else set()
    )
    if targets - reachable:
        raise Forbidden(
            f"owner {acting.external_id} manages none of the territories above "
            f"{', '.join(sorted(str(t) for t in targets - reachable))}",
            territory_ids=sorted(str(t) for t in targets - reachable),
        )


def _decide(
    transfer: Transfer, status: TransferStatus, data: TransferDecision, principal: Principal
) -> None:
    transfer.status = status
    transfer.decision_note = data.note
    transfer.decided_at = utcnow()
    transfer.decided_by_key_id = principal.key_id
    transfer.decided_by_owner_id = principal.acting_owner.id if principal.acting_owner else None


async def approve_transfer(
    session: AsyncSession,
    *,
    transfer_id: uuid.UUID,
    data: TransferDecision,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> tuple[Transfer, list[TransferItem]]:
    async with transaction(session, resource="transfer"):
        transfer, items = await _pending(session, transfer_id, expected, principal)
        await _check_approver(session, items, principal)
        failure = await _target_failure(session, transfer, items)
        ownerships = OwnershipRepository(session)
        current = await ownerships.of_customers(
            {item.customer_id for item in items}, for_update=True
        )
        customers = {
            c.id: c
            for c in await CustomerRepository(session).by_ids({i.customer_id for i in items})
        }
        moved = {item.customer_id for item in items}
        reason = f"transfer {transfer.id}: {transfer.reason}"[:500]
        signals: list[ConflictSignal] = []
        applied = []
        for item in items:
            ownership = current.get(item.customer_id)
            if ownership is None or item.customer_id not in customers:
                item.failure = "the customer no longer exists"
            elif ownership.version != item.expected_version:
                item.failure = (
                    f"the ownership changed since the transfer was requested (version "
                    f"{item.expected_version}, now {ownership.version})"
                )
            else:
                item.failure = failure.get(item.to_territory_id)
            if item.failure is not None:
                item.status = TransferItemStatus.FAILED
                continue
            item.status = TransferItemStatus.APPLIED
            applied.append(
                ownerships.assign(
                    item.customer_id,
                    ownership,
                    territory_id=item.to_territory_id,
                    owner_id=transfer.to_owner_id,
                    source=OwnershipSource.TRANSFER,
                    locked=True,
                    reason=reason,
                    actor=principal,
                )
            )
        for ownership in applied:
            signals += await follow_group(
                session,
                customers[ownership.customer_id],
                ownership,
                actor=principal,
                reason=reason,
                moved_alone=moved,
            )
        transfer.failed_count = sum(item.status is TransferItemStatus.FAILED for item in items)
        _decide(transfer, TransferStatus.APPLIED, data, principal)
        await session.flush()
        await record_signals(session, signals, ruleset_version=None)
    return transfer, items


async def _target_failure(
    session: AsyncSession, transfer: Transfer, items: list[TransferItem]
) -> dict[uuid.UUID, str]:
    """Why the target owner can no longer take customers in each territory, if they cannot.
    The owner row is share-locked, so they cannot be deactivated until this commits."""
    owner = await share_locked_owner(session, transfer.to_owner_id)
    if owner is None or not owner.active:
        return {
            item.to_territory_id: "the target owner no longer exists or is inactive"
            for item in items
        }
    memberships = await _memberships(session, transfer.to_owner_id)
    return {
        item.to_territory_id: f"the target owner left territory {item.to_territory_id}"
        for item in items
        if item.to_territory_id not in memberships
    }


async def close_transfer(
    session: AsyncSession,
    *,
    transfer_id: uuid.UUID,
    status: TransferStatus,
    data: TransferDecision,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> tuple[Transfer, list[TransferItem]]:
    """Reject (an approver) or cancel (anyone who may request transfers) a pending transfer:
    nothing moves."""
    async with transaction(session, resource="transfer"):
        transfer, items = await _pending(session, transfer_id, expected, principal)
        if status is TransferStatus.REJECTED:
            await _check_approver(session, items, principal)
        _decide(transfer, status, data, principal)
        await session.flush()
    return transfer, items
