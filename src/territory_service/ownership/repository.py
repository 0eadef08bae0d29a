import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from territory_service.logs import request_id_var
from territory_service.ownership.models import Ownership, OwnershipEvent, OwnershipSource
from territory_service.security.principal import Principal


class OwnershipRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, customer_id: uuid.UUID, *, for_update: bool = False) -> Ownership | None:
        statement = select(Ownership).where(Ownership.customer_id == customer_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    def record_removal(
        self, ownership: Ownership, *, reason: str, actor: Principal
    ) -> OwnershipEvent:
        """The event that closes a customer's history when it leaves the pool."""
        event = OwnershipEvent(
            customer_id=ownership.customer_id,
            version=ownership.version + 1,
            from_territory_id=ownership.territory_id,
            from_owner_id=ownership.owner_id,
            territory_id=None,
            owner_id=None,
            source=OwnershipSource.MANUAL,
            locked=False,
            reason=reason,
            actor_key_id=actor.key_id,
            acting_owner_id=actor.acting_owner.id if actor.acting_owner else None,
            request_id=request_id_var.get(),
        )
        self.session.add(event)
        return event
