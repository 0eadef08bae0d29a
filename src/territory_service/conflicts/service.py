"""Conflict use cases: each is one transaction.

Conflicts are logged by the work that finds them (`recorder.record_signals`); people list them
and close them here. A key confined to territories sees the conflicts in its territories;
one that names no territory (a duplicate across regions, say) needs an unconfined key.
"""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from territory_service import errors
from territory_service.conflicts.models import Conflict, ConflictStatus
from territory_service.conflicts.repository import ConflictFilter, ConflictRepository
from territory_service.conflicts.schemas import ConflictDismiss, ConflictResolve
from territory_service.db import utcnow
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
    repository = _repository(session, principal)
    async with transaction(session, resource="conflict"):
        conflict = await _open_conflict(repository, conflict_id, expected)
        # The action a resolution carries (assign to an owner, merge customers) will run here,
        # in this transaction, so that the conflict closes only if the action succeeds.
        await _close(
            repository, conflict, ConflictStatus.RESOLVED, note=data.note, principal=principal
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
        conflict = await _open_conflict(repository, conflict_id, expected)
        await _close(
            repository, conflict, ConflictStatus.DISMISSED, note=data.note, principal=principal
        )
    return conflict


async def _open_conflict(
    repository: ConflictRepository, conflict_id: uuid.UUID, expected: ExpectedVersion | None
) -> Conflict:
    """The conflict, locked, at the expected version and still open."""
    conflict = await repository.get_or_raise(conflict_id, for_update=True)
    check_expected(expected, "conflict", conflict.version)
    if conflict.status is not ConflictStatus.OPEN:
        raise ConflictNotOpen(conflict)
    return conflict


async def _close(
    repository: ConflictRepository,
    conflict: Conflict,
    status: ConflictStatus,
    *,
    note: str,
    principal: Principal,
) -> None:
    # Once closed, the row leaves the open-cause index: the next detection opens a new conflict.
    await repository.update(
        conflict,
        {
            "status": status,
            "resolution_note": note,
            "closed_at": utcnow(),
            "closed_by_key_id": principal.key_id,
        },
    )
