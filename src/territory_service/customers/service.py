"""Customer use cases: each is one transaction.

A key confined to territories may create or change only customers that end up inside its
territories; a write that would leave the customer outside is refused (403 `out-of-scope`) and
changes nothing.
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.customers.duplicates import detect_duplicates
from territory_service.customers.merge import close_duplicate_conflicts
from territory_service.customers.models import Customer
from territory_service.customers.repository import CustomerFilter, CustomerRepository
from territory_service.customers.schemas import CustomerCreate, CustomerUpdate
from territory_service.engine.facts import FIELDS
from territory_service.errors import (
    AlreadyExists,
    HierarchyCycle,
    InvalidReference,
    OutOfScope,
    StillReferenced,
)
from territory_service.ownership.repository import OwnershipRepository
from territory_service.ownership.resolver import resolve_customers
from territory_service.pagination import Page
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.security.principal import Principal
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
    """The group company exists (for this caller) and the customer is not above it already."""
    if await repository.get(parent_id) is None:
        raise InvalidReference("parent_id", "customer", parent_id)
    if customer_id is not None and customer_id in await repository.ancestor_ids(parent_id):
        raise HierarchyCycle(
            f"customer {parent_id} is {customer_id} itself or one of its subsidiaries",
            errors=[{"pointer": "#/parent_id", "detail": "would make a cycle"}],
        )


async def visible_after_write(repository: CustomerRepository, customer_id: uuid.UUID) -> Customer:
    """The customer as the caller sees it once written; refused when it left the caller's reach."""
    await repository.session.flush()
    customer = await repository.reload(customer_id)
    if customer is None:
        raise OutOfScope(
            "the customer would not lie in this key's territories; "
            "a key confined to territories only keeps customers inside them"
        )
    return customer


# Changes to what rules can read re-resolve a customer; `last_activity_at` and the like do not.
RESOLUTION_INPUTS = frozenset(FIELDS) | {"attributes", "parent_id"}
# Duplicates are looked for again when what they are matched on changes, or the owner does.
IDENTITY_INPUTS = frozenset({"name", "registration_id"})


def _repository(session: AsyncSession, principal: Principal) -> CustomerRepository:
    return CustomerRepository(session, roots=principal.territory_ids)


async def create_customer(
    session: AsyncSession, *, data: CustomerCreate, principal: Principal
) -> Customer:
    repository = _repository(session, principal)
    values = data.model_dump()

    async def explain() -> None:
        await repository.ensure_unique(unique_keys(values))

    async with transaction(session, resource="customer", explain_integrity_error=explain):
        if data.parent_id is not None:
            await check_parent(repository, None, data.parent_id)
        await repository.ensure_unique(unique_keys(values))
        await refuse_merged_key(repository, data.source, data.external_id)
        customer = await repository.add(Customer(**values))
        await resolve_customers(session, [customer], actor=principal, reason="customer created")
        await detect_duplicates(session, [customer])
        return await visible_after_write(repository, customer.id)


async def refuse_merged_key(repository: CustomerRepository, source: str, external_id: str) -> None:
    """A (source, external_id) that now resolves to the customer it was merged into cannot
    make a second record of that company: 409 naming the survivor."""
    survivor_id = (await repository.aliases({(source, external_id)})).get((source, external_id))
    if survivor_id is None:
        return
    shown = survivor_id if await repository.get(survivor_id) is not None else None
    raise AlreadyExists(
        f"source {source!r} external_id {external_id!r} belonged to a customer merged into "
        f"{f'customer {shown}' if shown else 'a customer outside your territories'}; "
        "update that customer instead",
        existing_id=shown,
        field="external_id",
    )


async def get_customer(
    session: AsyncSession, *, customer_id: uuid.UUID, principal: Principal
) -> Customer:
    async with transaction(session, resource="customer"):
        return await _repository(session, principal).get_or_raise(customer_id)


async def list_customers(
    session: AsyncSession,
    *,
    filters: CustomerFilter,
    limit: int,
    cursor: str | None,
    principal: Principal,
) -> Page[Customer]:
    async with transaction(session, resource="customer"):
        return await _repository(session, principal).page(filters, limit=limit, cursor=cursor)


async def update_customer(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    data: CustomerUpdate,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> Customer:
    repository = _repository(session, principal)
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
        await repository.update(customer, changes)
        moved = False
        if RESOLUTION_INPUTS & changes.keys():
            resolved = await resolve_customers(
                session, [customer], actor=principal, reason="facts changed"
            )
            moved = resolved.changed > 0
        if moved or IDENTITY_INPUTS & changes.keys():
            await detect_duplicates(session, [customer])
        return await visible_after_write(repository, customer_id)


async def delete_customer(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> None:
    repository = _repository(session, principal)
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
            ownerships.record_removal(ownership, reason="customer deleted", actor=principal)
        await close_duplicate_conflicts(
            session, customer_id, note=f"customer {customer_id} deleted", principal=principal
        )
        await repository.delete(customer)
