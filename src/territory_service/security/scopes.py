"""What an API key may do: one scope per kind of action."""

import enum


class Scope(enum.StrEnum):
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    OWNERS_READ = "owners:read"
    OWNERS_WRITE = "owners:write"
    TERRITORIES_READ = "territories:read"
    TERRITORIES_WRITE = "territories:write"
    RULES_READ = "rules:read"
    RULES_WRITE = "rules:write"
    TRANSFERS_WRITE = "transfers:write"
    TRANSFERS_APPROVE = "transfers:approve"
    POOL_CLAIM = "pool:claim"
    ACT_AS = "act_as"
    ADMIN = "admin"


SCOPE_DESCRIPTIONS: dict[Scope, str] = {
    Scope.CUSTOMERS_READ: "Read customers, their ownership and history",
    Scope.CUSTOMERS_WRITE: "Create, change and delete customers",
    Scope.OWNERS_READ: "Read owners",
    Scope.OWNERS_WRITE: "Create, change and delete owners",
    Scope.TERRITORIES_READ: "Read territories and their members",
    Scope.TERRITORIES_WRITE: "Change territories and their members",
    Scope.RULES_READ: "Read rule sets",
    Scope.RULES_WRITE: "Manage rule sets: edit drafts, simulate, activate",
    Scope.TRANSFERS_WRITE: "Request and cancel ownership transfers",
    Scope.TRANSFERS_APPROVE: "Approve or reject ownership transfers",
    Scope.POOL_CLAIM: "Claim customers from the public pool and release them",
    Scope.ACT_AS: "Act on behalf of an owner (X-Act-As header)",
    Scope.ADMIN: "Everything, including API keys and the audit trail",
}
