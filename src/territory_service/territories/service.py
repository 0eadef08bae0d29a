"""Territory and membership use cases: each is one transaction."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.errors import HierarchyCycle, InvalidReference, NotFound, StillReferenced
from territory_service.owners.repository import OwnerRepository
from territory_service.pagination import Page
from territory_service.preconditions import ExpectedVersion, check_expected
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


async def create_territory(session: AsyncSession, *, data: TerritoryCreate) -> Territory:
    repository = TerritoryRepository(session)
    values = data.model_dump()

    async def explain() -> None:
        await repository.ensure_unique(_unique_keys(values))

    async with transaction(session, resource="territory", explain_integrity_error=explain):
        if data.parent_id is not None:
            await _check_parent(repository, None, data.parent_id)
        await repository.ensure_unique(_unique_keys(values))
        territory = await repository.add(Territory(**values))
    return territory


async def get_territory(session: AsyncSession, *, territory_id: uuid.UUID) -> Territory:
    async with transaction(session, resource="territory"):
        return await TerritoryRepository(session).get_or_raise(territory_id)


async def list_territories(
    session: AsyncSession,
    *,
    parent_id: uuid.UUID | None,
    roots_only: bool,
    limit: int,
    cursor: str | None,
) -> Page[Territory]:
    async with transaction(session, resource="territory"):
        return await TerritoryRepository(session).page(
            parent_id=parent_id, roots_only=roots_only, limit=limit, cursor=cursor
        )


async def update_territory(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID,
    data: TerritoryUpdate,
    expected: ExpectedVersion | None,
) -> Territory:
    repository = TerritoryRepository(session)
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
    session: AsyncSession, *, territory_id: uuid.UUID, expected: ExpectedVersion | None
) -> None:
    repository = TerritoryRepository(session)
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
) -> tuple[TerritoryMember, bool]:
    """Add an owner to a territory or change their membership. Returns (member, created)."""
    members = MemberRepository(session)
    async with transaction(session, resource="member"):
        await TerritoryRepository(session).get_or_raise(territory_id)
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
    session: AsyncSession, *, territory_id: uuid.UUID, owner_id: uuid.UUID
) -> TerritoryMember:
    async with transaction(session, resource="member"):
        member = await MemberRepository(session).get_member(territory_id, owner_id)
        if member is None:
            raise NotFound("member", f"{owner_id} of territory {territory_id}")
        return member


async def list_members(
    session: AsyncSession, *, territory_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[TerritoryMember]:
    async with transaction(session, resource="member"):
        await TerritoryRepository(session).get_or_raise(territory_id)
        return await MemberRepository(session).page(
            territory_id=territory_id, limit=limit, cursor=cursor
        )


async def remove_member(
    session: AsyncSession,
    *,
    territory_id: uuid.UUID,
    owner_id: uuid.UUID,
    expected: ExpectedVersion | None,
) -> None:
    members = MemberRepository(session)
    async with transaction(session, resource="member"):
        member = await members.get_member(territory_id, owner_id, for_update=True)
        if member is None:
            raise NotFound("member", f"{owner_id} of territory {territory_id}")
        check_expected(expected, "member", member.version)
        await members.delete(member)
