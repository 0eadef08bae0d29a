"""Owner use cases: each is one transaction.

A key confined to territories sees the owners who are members there, and may change them; new
owners belong to no territory yet, so creating one needs an unconfined key.
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.errors import OutOfScope, StillReferenced
from territory_service.owners.models import Owner
from territory_service.owners.repository import OwnerRepository
from territory_service.owners.schemas import OwnerCreate, OwnerUpdate
from territory_service.pagination import Page
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.security.principal import Principal
from territory_service.transaction import transaction


def _unique_keys(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"external_id": {"external_id": values.get("external_id")}}


def _repository(session: AsyncSession, principal: Principal) -> OwnerRepository:
    return OwnerRepository(session, roots=principal.territory_ids)


async def create_owner(session: AsyncSession, *, data: OwnerCreate, principal: Principal) -> Owner:
    if principal.is_territory_scoped:
        raise OutOfScope("a new owner is in no territory yet; create it with an unconfined key")
    repository = _repository(session, principal)
    values = data.model_dump()

    async def explain() -> None:
        await repository.ensure_unique(_unique_keys(values))

    async with transaction(session, resource="owner", explain_integrity_error=explain):
        await repository.ensure_unique(_unique_keys(values))
        owner = await repository.add(Owner(**values))
    return owner


async def get_owner(session: AsyncSession, *, owner_id: uuid.UUID, principal: Principal) -> Owner:
    async with transaction(session, resource="owner"):
        return await _repository(session, principal).get_or_raise(owner_id)


async def list_owners(
    session: AsyncSession,
    *,
    active: bool | None,
    limit: int,
    cursor: str | None,
    principal: Principal,
) -> Page[Owner]:
    async with transaction(session, resource="owner"):
        return await _repository(session, principal).page(active=active, limit=limit, cursor=cursor)


async def update_owner(
    session: AsyncSession,
    *,
    owner_id: uuid.UUID,
    data: OwnerUpdate,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> Owner:
    repository = _repository(session, principal)
    changes = data.provided()

    async def explain() -> None:
        await repository.ensure_unique(_unique_keys(changes), exclude_id=owner_id)

    async with transaction(session, resource="owner", explain_integrity_error=explain):
        owner = await repository.get_or_raise(owner_id, for_update=True)
        check_expected(expected, "owner", owner.version)
        await repository.ensure_unique(_unique_keys(changes), exclude_id=owner_id)
        if owner.active and changes.get("active") is False:
            # Assignments share-lock the owner row, so none can slip in after this count.
            held = await repository.count_owned_customers(owner_id)
            if held:
                raise StillReferenced(
                    f"owner {owner_id} still holds {held} customer(s); hand them over first "
                    f"(POST /v1/owners/{owner_id}/handover)",
                    customers=held,
                )
        await repository.update(owner, changes)
    return owner


async def delete_owner(
    session: AsyncSession,
    *,
    owner_id: uuid.UUID,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> None:
    repository = _repository(session, principal)
    async with transaction(session, resource="owner"):
        owner = await repository.get_or_raise(owner_id, for_update=True)
        check_expected(expected, "owner", owner.version)
        owned = await repository.count_owned_customers(owner_id)
        if owned:
            raise StillReferenced(
                f"owner {owner_id} still owns {owned} customer(s); hand them over or deactivate "
                "the owner instead",
                customers=owned,
            )
        await repository.delete(owner)
