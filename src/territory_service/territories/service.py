"""Territory and membership use cases: each is one transaction.

A key confined to territories sees and changes those territories, their descendants and their
members. It may create territories only below one it sees, so nothing it makes or moves can
leave its subtrees; a root territory needs an unconfined key.
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.errors import (
    HierarchyCycle,
    InvalidReference,
    NotFound,
    OutOfScope,
    StillReferenced,
)
from territory_service.owners.repository import OwnerRepository
from territory_service.pagination import Page
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.security.principal import Principal
from territory_service.territories.models import Territory, TerritoryMember
from territory_service.territories.repository import MemberRepository, TerritoryRepository
from territory_service.territories.schemas import MemberPut, TerritoryCreate, TerritoryUpdate
from territory_service.transaction import transaction


def _unique_keys(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"code": {"code": values.get("code")}}


async def _check_parent(
    repository: TerritoryRepository, territory_id: uuid.UUID | None, parent_id: uuid.UUID
) -> None:
    if await repository.get(parent_id) is None:
        raise InvalidReference("parent_id", "territory", parent_id)
    if territory_id is not None and territory_id in await repository.ancestor_ids(parent_id):
        raise HierarchyCycle(
            f"territory {parent_id} is {territory_id} itself or lies below it; "
            "a territory cannot be moved under its own subtree",
            errors=[{"pointer": "#/parent_id", "detail": "would make a cycle"}],
        )


def _territories(session: AsyncSession, principal: Principal) -> TerritoryRepository:
    return TerritoryRepository(session, roots=principal.territory_ids)


def _members(session: AsyncSession, principal: Principal) -> MemberRepository:
    return MemberRepository(session, roots=principal.territory_ids)


async def create_territory(
    session: AsyncSession, *, data: TerritoryCreate, principal: Principal
) -> Territory:
    if data.parent_id is None and principal.is_territory_scoped:
        raise OutOfScope("a root territory lies outside this key's territories; give a parent_id")
    repository = _territories(session, principal)
    values = data.model_dump()

    async def explain() -> None:
        await repository.ensure_unique(_unique_keys(values))

    async with transaction(session, resource="territory", explain_integrity_error=explain):
        if data.parent_id is not None:
            await _check_parent(repository, None, data.parent_id)
        await repository.ensure_unique(_unique_keys(values))
        territory = await repository.add(Territory(**values))
    return territory


async def get_territory(
    session: AsyncSession, *, territory_id: uuid.UUID, principal: Principal
) -> Territory:
    async with transaction(session, resource="territory"):
        return await _territories(session, principal).get_or_raise(territory_id)


async def list_territories(
    session: AsyncSession,
    *,
    parent_id: uuid.UUID | None,
    roots_only: bool,
    limit: int,
    cursor: str | None,
    principal: Principal,
) -> Page[Territory]:
    async with transaction(session, resource="territory"):
        return await _territories(session, principal).page(
            parent_id=parent_id, roots_only=roots_only, limit=limit, cursor=cursor
        )


async def update_territory(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID,
    data: TerritoryUpdate,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> Territory:
    repository = _territories(session, principal)
    changes = data.provided()

    async def explain() -> None:
        await repository.ensure_unique(_unique_keys(changes), exclude_id=territory_id)

    async with transaction(session, resource="territory", explain_integrity_error=explain):
        if "parent_id" in changes:
            await repository.lock_tree()
        territory = await repository.get_or_raise(territory_id, for_update=True)
        check_expected(expected, "territory", territory.version)
        new_parent = changes.get("parent_id")
        if new_parent is not None and new_parent != territory.parent_id:
            await _check_parent(repository, territory_id, new_parent)
        await repository.ensure_unique(_unique_keys(changes), exclude_id=territory_id)
        await repository.update(territory, changes)
    return territory


async def delete_territory(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> None:
    repository = _territories(session, principal)
    async with transaction(session, resource="territory"):
        await repository.lock_tree()
        territory = await repository.get_or_raise(territory_id, for_update=True)
        check_expected(expected, "territory", territory.version)
        if await repository.has_children(territory_id):
            raise StillReferenced(
                f"territory {territory_id} has child territories; move or delete them first"
            )
        customers = await repository.count_customers(territory_id)
        if customers:
            raise StillReferenced(
                f"territory {territory_id} still holds {customers} customer(s)",
                customers=customers,
            )
        await repository.delete(territory)


async def put_member(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID,
    owner_id: uuid.UUID,
    data: MemberPut,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> tuple[TerritoryMember, bool]:
    """Add an owner to a territory or change their membership. Returns (member, created)."""
    members = _members(session, principal)
    async with transaction(session, resource="member"):
        await _territories(session, principal).get_or_raise(territory_id)
        # Any owner can be made a member: that is how an owner enters a confined key's view.
        await OwnerRepository(session).get_or_raise(owner_id)
        member = await members.get_member(territory_id, owner_id, for_update=True)
        created = member is None
        if member is None:
            check_expected(expected, "member", 0)
            member = await members.add(
                TerritoryMember(territory_id=territory_id, owner_id=owner_id, **data.model_dump())
            )
        else:
            check_expected(expected, "member", member.version)
            await members.update(member, data.model_dump())
    return member, created


async def get_member(
    session: AsyncSession, *, territory_id: uuid.UUID, owner_id: uuid.UUID, principal: Principal
) -> TerritoryMember:
    async with transaction(session, resource="member"):
        member = await _members(session, principal).get_member(territory_id, owner_id)
        if member is None:
            raise NotFound("member", f"{owner_id} of territory {territory_id}")
        return member


async def list_members(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    principal: Principal,
) -> Page[TerritoryMember]:
    async with transaction(session, resource="member"):
        await _territories(session, principal).get_or_raise(territory_id)
        return await _members(session, principal).page(
            territory_id=territory_id, limit=limit, cursor=cursor
        )


async def remove_member(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID,
    owner_id: uuid.UUID,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> None:
    members = _members(session, principal)
    async with transaction(session, resource="member"):
        member = await members.get_member(territory_id, owner_id, for_update=True)
        if member is None:
            raise NotFound("member", f"{owner_id} of territory {territory_id}")
        check_expected(expected, "member", member.version)
        await members.delete(member)
