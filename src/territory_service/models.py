"""Every ORM model, imported in one place so that Alembic and the mappers see the whole schema."""

from territory_service.api_keys.models import ApiKey
from territory_service.audit.models import AuditEntry
from territory_service.conflicts.models import Conflict, ConflictCustomer
from territory_service.customers.models import Customer, CustomerAlias
from territory_service.db import Base
from territory_service.idempotency.models import IdempotencyRecord
from territory_service.jobs.models import Job, JobPiece
from territory_service.owners.models import Owner
from territory_service.ownership.models import Ownership, OwnershipEvent, PlannedChange
from territory_service.pool.models import PoolRules
from territory_service.rulesets.models import RuleRow, RuleSet
from territory_service.territories.models import Territory, TerritoryMember
from territory_service.transfers.models import Transfer, TransferItem

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Conflict",
    "ConflictCustomer",
    "Customer",
    "CustomerAlias",
    "IdempotencyRecord",
    "Job",
    "JobPiece",
    "Owner",
    "Ownership",
    "OwnershipEvent",
    "PlannedChange",
    "PoolRules",
    "RuleRow",
    "RuleSet",
    "Territory",
    "TerritoryMember",
    "Transfer",
    "TransferItem",
]
