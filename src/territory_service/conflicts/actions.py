"""The actions a conflict's resolution may carry out: assign a customer, merge two customers.

Each runs inside the resolution's transaction, so the conflict closes only if the action
succeeds, and takes its locks in the same order as the operation it stands for (customers,
then ownership rows, then conflicts), so that it never waits in a cycle with one.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service import errors
from territory_service.conflicts.models import Conflict
from territory_service.conflicts.repository import ConflictRepository
from territory_service.conflicts.schemas import AssignAction, ConflictAction
from territory_service.customers.merge import merge_into
from territory_service.ownership.assignment import assign_locked
from territory_service.preconditions import ExpectedVersion
from territory_service.security.principal import Principal
from territory_service.security.scopes import Scope

SCOPES = {"assign": Scope.TRANSFERS_APPROVE, "merge": Scope.CUSTOMERS_WRITE}


class ActionNotApplicable(errors.ServiceError):
    status = 422
    slug = "action-not-applicable"
    title = "The action does not fit the conflict"


def check_allowed(action: ConflictAction, principal: Principal) -> None:
    """The key holds the scope the action's own operation needs."""
    needed = SCOPES[action.type]
    if not principal.has(needed):
        raise errors.Forbidden(
            f"the {action.type} action needs the scope {needed.value}",
            missing_scopes=[needed.value],
        )


async def _check_listed(
    session: AsyncSession, conflict: Conflict, customer_id: uuid.UUID, field: str
) -> None:
    """The conflict names the customer (any of them, not only those in its sample)."""
    if not await ConflictRepository(session).names(conflict.id, customer_id):
        raise ActionNotApplicable(
            f"customer {customer_id} is not one of the customers conflict {conflict.id} lists",
            errors=[{"pointer": f"#/action/{field}", "detail": "not listed by the conflict"}],
        )


async def carry_out(
    session: AsyncSession,
    conflict: Conflict,
    action: ConflictAction,
    *,
    note: str,
    principal: Principal,
) -> None:
    """Carry out `action` in the caller's transaction."""
    if isinstance(action, AssignAction):
        await _check_listed(session, conflict, action.customer_id, "customer_id")
        await _assign(session, action, reason=note, principal=principal)
        return
    await _check_listed(session, conflict, action.survivor_id, "survivor_id")
    await _check_listed(session, conflict, action.merged_id, "merged_id")
    await merge_into(
        session,
        survivor_id=action.survivor_id,
        merged_id=action.merged_id,
        reason=note[:400],
        expected=None,
        principal=principal,
        field="action/merged_id",
        conflicts_closed_by_caller={conflict.id},
    )


async def _assign(
    session: AsyncSession, action: AssignAction, *, reason: str, principal: Principal
) -> None:
    """What `PUT /v1/customers/{id}/ownership` does, in the resolution's transaction."""
    version = action.ownership_version
    await assign_locked(
        session,
        customer_id=action.customer_id,
        territory_id=action.territory_id,
        owner_id=action.owner_id,
        reason=reason[:500],
        expected=None if version is None else ExpectedVersion(frozenset({version}), f'"{version}"'),
        principal=principal,
        fields="action/",
    )
