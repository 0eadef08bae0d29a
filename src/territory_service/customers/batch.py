"""Batch upsert of customers by (source, external_id), with a result per item.

Every item is validated and checked on its own, so one bad item fails alone; the good ones are
written together in one transaction. A key of a customer merged into another updates the
survivor. Keys are checked before writing; when a concurrent writer takes a key in between, the
whole batch is re-planned against the new state and tried again. Duplicates of the customers
created, renamed or moved to another owner are looked for with one query for the whole batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.api.problems import body_validation_items, json_pointer, nested_pointer
from territory_service.customers.duplicates import detect_duplicates
from territory_service.customers.models import Customer
from territory_service.customers.repository import CustomerRepository
from territory_service.customers.schemas import (
    BatchItemResult,
    BatchItemStatus,
    CustomerBatchResult,
    CustomerCreate,
)
from territory_service.customers.service import IDENTITY_INPUTS, check_parent
from territory_service.engine.resolution import Source
from territory_service.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    InvalidReference,
    OutOfScope,
    ServiceError,
)
from territory_service.ids import new_id
from territory_service.ownership.resolver import resolve_customers
from territory_service.security.principal import Principal
from territory_service.transaction import transaction

# A batch re-planned after losing a race on a key cannot lose to the same rival again.
ATTEMPTS = 5
IDENTITY = ("source", "external_id")


@dataclass
class _Plan:
    results: dict[int, BatchItemResult] = field(default_factory=dict)
    valid: list[tuple[int, CustomerCreate]] = field(default_factory=list)

    def fail(self, index: int, detail: str, errors: list[dict[str, Any]]) -> None:
        """Record a failed item; `errors` point into the request body (`#/items/{index}/...`)."""
        self.results[index] = BatchItemResult.model_validate(
            {"index": index, "status": BatchItemStatus.ERROR, "detail": detail, "errors": errors}
        )

    def repeated(self, index: int, field: str, detail: str) -> None:
        """Fail an item whose unique key repeats an earlier item's; `field` makes the key."""
        self.fail(index, detail, [{"pointer": _item_pointer(index, field), "detail": detail}])

    def refused(self, index: int, exc: ServiceError) -> None:
        """Fail an item the domain refused. The error points within the item, as it would for
        a single create; the batch answer points within the whole request."""
        errors = [
            error | {"pointer": _within_request(error.get("pointer"), index)}
            for error in exc.extensions.get("errors") or ()
        ]
        if not errors:
            field = exc.extensions.get("field")
            where = _item_pointer(index, field) if isinstance(field, str) else _item_pointer(index)
            errors = [{"pointer": where, "detail": exc.detail}]
        self.fail(index, exc.detail, errors)


def _item_pointer(index: int, *parts: str | int) -> str:
    return json_pointer("items", index, *parts)


def _within_request(pointer: object, index: int) -> str:
    if isinstance(pointer, str) and pointer.startswith("#"):
        return nested_pointer(pointer, "items", index)
    return _item_pointer(index)


def _validate(items: list[Any]) -> _Plan:
    plan = _Plan()
    first_with_key: dict[tuple[str, str], int] = {}
    first_with_registration: dict[str, int] = {}
    for index, raw in enumerate(items):
        try:
            data = CustomerCreate.model_validate(raw)
        except ValidationError as exc:
            errors = body_validation_items(
                exc.errors(include_url=False), at=("items", index), document=raw
            )
            plan.fail(index, "invalid item", errors)
            continue
        key = (data.source, data.external_id)
        if key in first_with_key:
            earlier = first_with_key[key]
            plan.repeated(index, "external_id", f"same source and external_id as items[{earlier}]")
            continue
        registration = data.registration_id
        if registration is not None and registration in first_with_registration:
            earlier = first_with_registration[registration]
            plan.repeated(index, "registration_id", f"same registration_id as items[{earlier}]")
            continue
        first_with_key[key] = index
        if registration is not None:
            first_with_registration[registration] = index
        plan.valid.append((index, data))
    return plan


async def upsert_customers(
    session: AsyncSession, *, items: list[Any], principal: Principal
) -> CustomerBatchResult:
    for attempt in range(ATTEMPTS):
        try:
            return await _upsert_once(session, _validate(items), principal)
        except ConcurrentUpdate:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _StoredState:
    """What the database holds for a batch's keys, read once for all items."""

    existing: dict[tuple[str, str], Customer]
    holders: dict[str, uuid.UUID]
    # Of the customers above and the named parents, those the caller may see.
    visible: set[uuid.UUID]
    confined: bool


async def _read_state(repository: CustomerRepository, plan: _Plan) -> _StoredState:
    existing = await repository.by_keys(
        {(data.source, data.external_id) for _, data in plan.valid}, for_update=True
    )
    holders = await repository.holders_of_registration_ids(
        {data.registration_id for _, data in plan.valid if data.registration_id}
    )
    candidates = {c.id for c in existing.values()} | set(holders.values())
    candidates |= {data.parent_id for _, data in plan.valid if data.parent_id}
    return _StoredState(
        existing=existing,
        holders=holders,
        visible=await repository.existing_ids(candidates),
        confined=repository.roots is not None,
    )


async def _upsert_once(
    session: AsyncSession, plan: _Plan, principal: Principal
) -> CustomerBatchResult:
    repository = CustomerRepository(session, roots=principal.territory_ids)
    async with transaction(session, resource="customer batch"):
        state = await _read_state(repository, plan)
        if any(data.parent_id for _, data in plan.valid):
            await repository.lock_tree()
        touched: list[tuple[int, Customer, BatchItemStatus]] = []
        item_of: dict[uuid.UUID, int] = {}
        renamed: set[uuid.UUID] = set()
        for index, data in plan.valid:
            current = state.existing.get((data.source, data.external_id))
            if current is not None and current.id in item_of:
                # Two keys of one customer: its own and one it took over in a merge.
                earlier = item_of[current.id]
                plan.repeated(
                    index, "external_id", f"same customer as items[{earlier}] (merged ids)"
                )
                continue
            try:
                outcome, customer, fields = await _apply(repository, data, current, state)
            except ServiceError as exc:
                plan.refused(index, exc)
                continue
            item_of[customer.id] = index
            touched.append((index, customer, outcome))
            if IDENTITY_INPUTS & fields:
                renamed.add(customer.id)
        await session.flush()
        await _resolve_and_detect(session, touched, renamed=renamed, principal=principal)
    for index, customer, status in touched:
        plan.results[index] = BatchItemResult(
            index=index, status=status, id=customer.id, version=customer.version
        )
    ordered = [plan.results[index] for index in sorted(plan.results)]
    counts = dict.fromkeys(BatchItemStatus, 0)
    for result in ordered:
        counts[result.status] += 1
    return CustomerBatchResult(
        created=counts[BatchItemStatus.CREATED],
        updated=counts[BatchItemStatus.UPDATED],
        unchanged=counts[BatchItemStatus.UNCHANGED],
        failed=counts[BatchItemStatus.ERROR],
        items=ordered,
    )


async def _resolve_and_detect(
    session: AsyncSession,
    touched: list[tuple[int, Customer, BatchItemStatus]],
    *,
    renamed: set[uuid.UUID],
    principal: Principal,
) -> None:
    """Resolve the customers created or changed, then look for duplicates of those created,
    renamed (name or registration id) or moved to another owner."""
    changed = [c for _, c, outcome in touched if outcome is not BatchItemStatus.UNCHANGED]
    places = {c.id: _place(c) for _, c, outcome in touched if outcome is BatchItemStatus.UPDATED}
    resolved = await resolve_customers(session, changed, actor=principal, reason="batch upsert")
    again = renamed | {
        customer_id
        for customer_id, decision in resolved.decisions.items()
        if decision.source is not Source.KEPT
        and (decision.territory_id, decision.owner_id) != places.get(customer_id)
    }
    await detect_duplicates(session, [c for c in changed if c.id not in places or c.id in again])


def _place(customer: Customer) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """Where a stored customer's ownership stands (its ownership was read with it)."""
    ownership = customer.ownership
    return None if ownership is None else (ownership.territory_id, ownership.owner_id)


async def _apply(
    repository: CustomerRepository,
    data: CustomerCreate,
    current: Customer | None,
    state: _StoredState,
) -> tuple[BatchItemStatus, Customer, frozenset[str]]:
    """Check one item against the stored state and stage its change in the session; returns
    the outcome, the customer and the fields that changed."""
    if current is not None and current.id not in state.visible:
        raise AlreadyExists(
            "a customer outside your territories has this source and external_id",
            existing_id=None,
            field="external_id",
        )
    holder = state.holders.get(data.registration_id) if data.registration_id else None
    if holder is not None and (current is None or holder != current.id):
        shown = holder if holder in state.visible else None
        raise AlreadyExists(
            f"customer {shown or 'outside your territories'} already has "
            f"registration_id={data.registration_id!r}",
            existing_id=shown,
            field="registration_id",
        )
    if data.parent_id is not None and data.parent_id not in state.visible:
        raise InvalidReference("parent_id", "customer", data.parent_id)
    if current is None:
        if state.confined:
            raise OutOfScope(
                "a key confined to territories creates customers one at a time "
                "(POST /v1/customers), so that each is checked against its territories"
            )
        customer = Customer(id=new_id(), **data.model_dump())
        repository.session.add(customer)
        return BatchItemStatus.CREATED, customer, frozenset(data.model_fields_set)
    changes = {
        name: value
        for name, value in data.provided().items()
        if name not in IDENTITY and getattr(current, name) != value
    }
    if not changes:
        return BatchItemStatus.UNCHANGED, current, frozenset()
    if "parent_id" in changes and changes["parent_id"] is not None:
        await repository.session.flush()
        await check_parent(repository, current.id, changes["parent_id"])
    for name, value in changes.items():
        setattr(current, name, value)
    return BatchItemStatus.UPDATED, current, frozenset(changes)
