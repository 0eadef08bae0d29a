"""Authentication and scope checks as FastAPI dependencies.

Every protected operation declares `Security(authenticate, scopes=[...])` through one of the
aliases below; the scopes appear on the operation in the OpenAPI document.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from territory_service.api_keys import service as api_keys
from territory_service.errors import Forbidden, NotFound, OutOfScope, ServiceError
from territory_service.security.principal import Principal
from territory_service.security.scopes import Scope

SECURITY_SCHEME = "ApiKey"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name=SECURITY_SCHEME,
    bearerFormat="tsk_…",
    description="An API key: `Authorization: Bearer tsk_…`. Each operation lists the scopes it "
    "needs; `admin` holds them all.",
)


async def authenticate(
    request: Request,
    security_scopes: SecurityScopes,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    act_as: Annotated[
        str | None,
        Header(
            alias="X-Act-As",
            max_length=128,
            description="External id of the owner this call is made for (needs `act_as`).",
        ),
    ] = None,
) -> Principal:
    return await authenticate_request(
        request,
        scopes=security_scopes.scopes,
        secret=None if credentials is None else credentials.credentials,
        act_as=act_as,
    )


async def authenticate_request(
    request: Request, *, scopes: Sequence[str], secret: str | None, act_as: str | None
) -> Principal:
    """The caller, checked for `scopes`; recorded on the request for the audit trail."""
    state = request.scope.setdefault("state", {})
    try:
        principal, snapshot = await api_keys.authenticate(
            request.app.state.request_reads,
            request.app.state.session_factory,
            secret=secret,
            act_as=act_as,
        )
    except ServiceError as exc:
        state["audit_key_id"] = exc.extensions.get("key_id")
        raise
    state["principal"] = principal
    state["active_ruleset"] = snapshot.active_ruleset  # see `active_ruleset` below
    missing = [scope for scope in scopes if not principal.has(Scope(scope))]
    if missing:
        raise Forbidden(f"this key lacks the scope(s) {', '.join(missing)}", missing_scopes=missing)
    return principal


def active_ruleset(request: Request) -> tuple[uuid.UUID, int] | None:
    """The id and version of the rule set active as this request began, or None.

    Read with the caller's API key, in the same statement (`api_keys/request_reads.py`), by
    `authenticate_request`, which the operation's security dependency runs before the
    endpoint. So a stateless preview costs no query of its own for it, and an activation holds
    from the next request on, on every replica."""
    ruleset: tuple[uuid.UUID, int] | None = request.state.active_ruleset
    return ruleset


CustomersRead = Annotated[Principal, Security(authenticate, scopes=[Scope.CUSTOMERS_READ])]
CustomersWrite = Annotated[Principal, Security(authenticate, scopes=[Scope.CUSTOMERS_WRITE])]
OwnersRead = Annotated[Principal, Security(authenticate, scopes=[Scope.OWNERS_READ])]
OwnersWrite = Annotated[Principal, Security(authenticate, scopes=[Scope.OWNERS_WRITE])]
TerritoriesRead = Annotated[Principal, Security(authenticate, scopes=[Scope.TERRITORIES_READ])]
TerritoriesWrite = Annotated[Principal, Security(authenticate, scopes=[Scope.TERRITORIES_WRITE])]
PoolClaim = Annotated[Principal, Security(authenticate, scopes=[Scope.POOL_CLAIM])]
TransfersWrite = Annotated[Principal, Security(authenticate, scopes=[Scope.TRANSFERS_WRITE])]
# Deciding ownership by hand (manual assignment, unlock, approving transfers).
TransfersApprove = Annotated[Principal, Security(authenticate, scopes=[Scope.TRANSFERS_APPROVE])]
Admin = Annotated[Principal, Security(authenticate, scopes=[Scope.ADMIN])]


async def unconfined(
    request: Request, principal: Annotated[Principal, Security(authenticate)]
) -> Principal:
    """For global configuration (rule sets, jobs): no territory lies around it, so a key
    confined to territories finds no such id (404) and cannot list or create them (403)."""
    if principal.is_territory_scoped:
        if request.path_params:
            raise NotFound("resource", request.url.path)
        raise OutOfScope("rule sets and jobs are global configuration; use an unconfined key")
    return principal


RulesRead = Annotated[Principal, Security(unconfined, scopes=[Scope.RULES_READ])]
RulesWrite = Annotated[Principal, Security(unconfined, scopes=[Scope.RULES_WRITE])]
