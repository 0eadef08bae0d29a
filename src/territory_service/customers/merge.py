"""Merging two records of one company: the other customer is folded into the survivor.

One transaction: the group tree is locked (no concurrent move can make a cycle), then both
customers in id order, then both ownership rows in id order, so two merges (or a merge and
any other write) of the same customers never wait on each other in a cycle; the loser of a
race finds the merged customer gone (409 `already-merged`).

The rules, what a CRM administrator would expect:

- The survivor keeps its facts and its ownership: merging decides which record stays, not who
  owns the company (assign it afterwards, or resolve the duplicate conflict with an `assign`
  action). Its version goes up, since it now answers for more external ids.
- The merged customer's history stays; a last event closes it (territory null, source
  `merge`), like a deletion.
- Its subsidiaries move to the survivor, and follow the survivor's group from then on.
- Its (source, external_id), and any it had taken over in earlier merges, resolve to the
  survivor: a batch upsert with them updates the survivor, a create with them answers 409
  naming the survivor, and `GET /v1/customers?external_id=` finds the survivor.
- Its open `duplicate_customer` conflicts are closed as resolved.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service import errors
from territory_service.conflicts.models import ConflictStatus
from territory_service.conflicts.repository import ConflictRepository
from territory_service.customers.models import Customer
from territory_service.customers.repository import CustomerRepository
from territory_service.db import utcnow
from territory_service.ownership.groups import subsidiaries
from territory_service.ownership.models import OwnershipSource
from territory_service.ownership.repository import OwnershipRepository
from territory_service.ownership.resolver import resolve_customers
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.security.principal import Principal
from territory_service.transaction import transaction


class InvalidMerge(errors.ServiceError):
    status = 422
    slug = "invalid-merge"
    title = "These customers cannot be merged"


class AlreadyMerged(errors.Conflict):
    slug = "already-merged"
    title = "The customer was merged into another"

    def __init__(self, merged_id: uuid.UUID, survivor_id: uuid.UUID | None) -> None:
        into = "another customer" if survivor_id is None else f"customer {survivor_id}"
        super().__init__(
            f"customer {merged_id} was already merged into {into}",
            merged_id=str(merged_id),
            survivor_id=None if survivor_id is None else str(survivor_id),
        )


async def merge_customers(
    session: AsyncSession,
    *,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    reason: str | None,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> Customer:
    async with transaction(session, resource="customer"):
        return await merge_into(
            session,
            survivor_id=survivor_id,
            merged_id=merged_id,
            reason=reason,
            expected=expected,
            principal=principal,
        )


async def merge_into(
    session: AsyncSession,
    *,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    reason: str | None,
    expected: ExpectedVersion | None,
    principal: Principal,
    field: str = "customer_id",
    conflicts_closed_by_caller: Collection[uuid.UUID] = (),
) -> Customer:
    """Fold `merged_id` into `survivor_id` in the caller's transaction; returns the survivor.
    `field` names the merged customer in the request, for errors."""
    if survivor_id == merged_id:
        raise InvalidMerge(
            "a customer cannot be merged into itself",
            errors=[{"pointer": f"#/{field}", "detail": "is the survivor itself"}],
        )
    repository = CustomerRepository(session, roots=principal.territory_ids)
    await repository.lock_tree()
    locked = await repository.lock({survivor_id, merged_id})
    survivor = locked.get(survivor_id)
    if survivor is None:
        raise errors.NotFound("customer", survivor_id)
    check_expected(expected, "customer", survivor.version)
    merged = locked.get(merged_id) or await _missing(repository, merged_id, field)
    if merged_id in await repository.ancestor_ids(survivor_id):
        raise errors.HierarchyCycle(
            f"customer {survivor_id} is a subsidiary of {merged_id}; "
            "merge the subsidiary into its group company instead",
            errors=[{"pointer": f"#/{field}", "detail": "is a group company of the survivor"}],
        )
    ownerships = OwnershipRepository(session)
    current = await ownerships.of_customers({survivor_id, merged_id}, for_update=True)
    moved = await _adopt_subsidiaries(repository, merged, survivor)
    note = f"merged into {survivor_id}" + (f": {reason}" if reason else "")
    if merged_id in current:
        ownerships.record_removal(
            current[merged_id], reason=note, actor=principal, source=OwnershipSource.MERGE
        )
    await repository.hand_over_aliases(merged=merged, survivor_id=survivor_id)
    await close_duplicate_conflicts(
        session, merged_id, note=note, principal=principal, skip=conflicts_closed_by_caller
    )
    survivor.updated_at = utcnow()  # a new version: it answers for more external ids now
    await repository.delete(merged)
    if moved:
        # The moved subsidiaries (and theirs) now follow the survivor's group.
        customers = await CustomerRepository(session).by_ids(moved)
        await resolve_customers(session, customers, actor=principal, reason=note)
    reloaded = await repository.reload(survivor_id)
    if reloaded is None:  # cannot happen: its ownership did not change
        raise errors.NotFound("customer", survivor_id)
    return reloaded


async def _missing(repository: CustomerRepository, merged_id: uuid.UUID, field: str) -> Customer:
    """Why the customer to merge was not found: merged already, or unknown to the caller."""
    survivor_id = await repository.merged_into(merged_id)
    if survivor_id is not None:
        visible = await repository.get(survivor_id) is not None
        raise AlreadyMerged(merged_id, survivor_id if visible else None)
    raise errors.InvalidReference(field, "customer", merged_id)


async def _adopt_subsidiaries(
    repository: CustomerRepository, merged: Customer, survivor: Customer
) -> set[uuid.UUID]:
    """The merged customer's subsidiaries become the survivor's; returns them and every
    customer below them."""
    children = await repository.children(merged.id)
    moved = {child.id for child in children}
    for child in children:
        moved.update(await subsidiaries(repository.session, child.id))
    if repository.roots is not None and len(await repository.existing_ids(moved)) < len(moved):
        raise errors.OutOfScope(
            f"customer {merged.id} has subsidiaries outside this key's territories; "
            "merging would move them"
        )
    for child in children:
        child.parent_id = survivor.id
    await repository.session.flush()
    return moved


async def close_duplicate_conflicts(
    session: AsyncSession,
    merged_id: uuid.UUID,
    *,
    note: str,
    principal: Principal,
    skip: Collection[uuid.UUID] = (),
) -> None:
    """Resolve the open `duplicate_customer` conflicts naming a customer that is gone."""
    conflicts = ConflictRepository(session)
    for conflict in await conflicts.open_duplicates_of(merged_id):
        if conflict.id not in skip:
            await conflicts.close(conflict, ConflictStatus.RESOLVED, note=note, principal=principal)
