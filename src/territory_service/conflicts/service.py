"""Conflict use cases: each is one transaction.

Conflicts are logged by the work that finds them (`recorder.record_signals`); people list them
and close them here, a resolution possibly carrying an action (`actions`). A key confined to
territories sees the conflicts in its territories; one that names no territory needs an
unconfined key. (A duplicate pair lies in the smallest territory holding both customers.)
"""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service import errors
from territory_service.conflicts import actions
from territory_service.conflicts.models import Conflict, ConflictStatus
from territory_service.conflicts.repository import ConflictFilter, ConflictRepository
from territory_service.conflicts.schemas import ConflictDismiss, ConflictResolve
from territory_service.pagination import Page
from territory_service.preconditions import ExpectedVersion, check_expected
from territory_service.security.principal import Principal
from territory_service.transaction import transaction


class ConflictNotOpen(errors.Conflict):
    slug = "conflict-not-open"
    title = "The conflict is already closed"

    def __init__(self, conflict: Conflict) -> None:
        super().__init__(
            f"conflict {conflict.id} is already {conflict.status.value}; "
            "only an open conflict can be resolved or dismissed",
            conflict_status=conflict.status.value,
        )


def _repository(session: AsyncSession, principal: Principal) -> ConflictRepository:
    return ConflictRepository(session, roots=principal.territory_ids)


async def list_conflicts(
    session: AsyncSession,
    *,
    filters: ConflictFilter,
    limit: int,
    cursor: str | None,
    principal: Principal,
) -> Page[Conflict]:
    async with transaction(session, resource="conflict"):
        return await _repository(session, principal).page(filters, limit=limit, cursor=cursor)


async def get_conflict(
    session: AsyncSession, *, conflict_id: uuid.UUID, principal: Principal
) -> Conflict:
    async with transaction(session, resource="conflict"):
        return await _repository(session, principal).get_or_raise(conflict_id)


async def resolve_conflict(
    session: AsyncSession,
    *,
    conflict_id: uuid.UUID,
    data: ConflictResolve,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> Conflict:
    """Close the conflict as resolved, carrying out its action first in the same transaction.

    The action takes its locks first (customers, ownership rows), the conflict's row after
    them, as every other write does; the conflict is then checked again, so that of two people
    resolving it at once exactly one succeeds."""
    if data.action is not None:
        actions.check_allowed(data.action, principal)
    repository = _repository(session, principal)
    async with transaction(session, resource="conflict"):
        action = None
        if data.action is not None:
            conflict = _check_open(await repository.get_or_raise(conflict_id), expected)
            await actions.carry_out(
                session, conflict, data.action, note=data.note, principal=principal
            )
            action = data.action.model_dump(mode="json")
        conflict = _check_open(await repository.lock(conflict_id), expected)
        await repository.close(
            conflict, ConflictStatus.RESOLVED, note=data.note, principal=principal, action=action
        )
    return conflict


async def dismiss_conflict(
    session: AsyncSession,
    *,
    conflict_id: uuid.UUID,
    data: ConflictDismiss,
    expected: ExpectedVersion | None,
    principal: Principal,
) -> Conflict:
    repository = _repository(session, principal)
    async with transaction(session, resource="conflict"):
        conflict = _check_open(await repository.lock(conflict_id), expected)
        await repository.close(
            conflict, ConflictStatus.DISMISSED, note=data.note, principal=principal
        )
    return conflict


def _check_open(conflict: Conflict, expected: ExpectedVersion | None) -> Conflict:
    """The conflict, at the expected version and still open."""
    check_expected(expected, "conflict", conflict.version)
    if conflict.status is not ConflictStatus.OPEN:
        raise ConflictNotOpen(conflict)
    return conflict
