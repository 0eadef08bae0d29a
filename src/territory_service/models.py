"""Every ORM model, imported in one place so that Alembic and the mappers see the whole schema."""

from territory_service.customers.models import Customer
from territory_service.db import Base
from territory_service.owners.models import Owner
from territory_service.ownership.models import Ownership, OwnershipEvent
from territory_service.territories.models import Territory, TerritoryMember

__all__ = [
    "Base",
    "Customer",
    "Owner",
    "Ownership",
    "OwnershipEvent",
    "Territory",
    "TerritoryMember",
]
