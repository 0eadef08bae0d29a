"""Customer use cases: each is one transaction."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.customers.models import Customer
from territory_service.customers.repository import CustomerFilter, CustomerRepository
from territory_service.customers.schemas import CustomerCreate, CustomerUpdate
from territory_service.errors import HierarchyCycle, InvalidReference, StillReferenced
from territory_service.ownership.repository import OwnershipRepository
from territory_service.pagination import Page
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.transaction import transaction


def unique_keys(
    values: dict[str, Any], current: Customer | None = None
) -> dict[str, dict[str, Any]]:
    """The customer's unique keys, from new values falling back to the stored ones."""

    def value(name: str) -> Any:
        return values[name] if name in values else getattr(current, name, None)

    return {
        "external_id": {"source": value("source"), "external_id": value("external_id")},
        "registration_id": {"registration_id": value("registration_id")},
    }


async def check_parent(
    repository: CustomerRepository, customer_id: uuid.UUID | None, parent_id: uuid.UUID
) -> None:
    """The group company exists and the customer is not above it already."""
    if customer_id is None:
        if not await repository.existing_ids({parent_id}):
            raise InvalidReference("parent_id", "customer", parent_id)
        return
    ancestors = await repository.ancestor_ids(parent_id)
    if not ancestors:
        raise InvalidReference("parent_id", "customer", parent_id)
    if customer_id in ancestors:
        raise HierarchyCycle(
            f"customer {parent_id} is {customer_id} itself or one of its subsidiaries",
            errors=[{"pointer": "#/parent_id", "detail": "would make a cycle"}],
        )


async def create_customer(session: AsyncSession, *, data: CustomerCreate) -> Customer:
    repository = CustomerRepository(session)
    values = data.model_dump()

    async def explain() -> None:
        await repository.ensure_unique(unique_keys(values))

    async with transaction(session, resource="customer", explain_integrity_error=explain):
        if data.parent_id is not None:
            await check_parent(repository, None, data.parent_id)
        await repository.ensure_unique(unique_keys(values))
        customer = await repository.add(Customer(**values))
        return await repository.get_or_raise(customer.id)


async def get_customer(session: AsyncSession, *, customer_id: uuid.UUID) -> Customer:
    async with transaction(session, resource="customer"):
        return await CustomerRepository(session).get_or_raise(customer_id)


async def list_customers(
    session: AsyncSession, *, filters: CustomerFilter, limit: int, cursor: str | None
) -> Page[Customer]:
    async with transaction(session, resource="customer"):
        return await CustomerRepository(session).page(filters, limit=limit, cursor=cursor)


async def update_customer(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    data: CustomerUpdate,
    expected: ExpectedVersion | None,
) -> Customer:
    repository = CustomerRepository(session)
    changes = data.provided()

    async def explain() -> None:
        await repository.ensure_unique(unique_keys(changes), exclude_id=customer_id)

    async with transaction(session, resource="customer", explain_integrity_error=explain):
        if changes.get("parent_id") is not None:
            await repository.lock_tree()
        customer = await repository.get_or_raise(customer_id, for_update=True)
        check_expected(expected, "customer", customer.version)
        if changes.get("parent_id") not in (None, customer.parent_id):
            await check_parent(repository, customer_id, changes["parent_id"])
        await repository.ensure_unique(unique_keys(changes, customer), exclude_id=customer_id)
        return await repository.update(customer, changes)


async def delete_customer(
    session: AsyncSession, *, customer_id: uuid.UUID, expected: ExpectedVersion | None
) -> None:
    repository = CustomerRepository(session)
    async with transaction(session, resource="customer"):
        customer = await repository.get_or_raise(customer_id, for_update=True)
        check_expected(expected, "customer", customer.version)
        if await repository.has_children(customer_id):
            raise StillReferenced(
                f"customer {customer_id} is the group company of other customers; "
                "move or delete its subsidiaries first"
            )
        ownerships = OwnershipRepository(session)
        ownership = await ownerships.get(customer_id, for_update=True)
        if ownership is not None:
            ownerships.record_removal(ownership, reason="customer deleted")
        await repository.delete(customer)
