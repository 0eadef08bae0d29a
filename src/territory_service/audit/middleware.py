"""Records every write and every refused authentication or authorisation in the audit log.

The entry is written when the response starts and before it is sent, so a client never sees an
answer to a write that the audit log lacks. Reads are not recorded unless refused, and neither
are POSTs that change nothing (`POST /v1/resolve`, `validate`): their endpoints say so with
`mark_unchanging`.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from territory_service.audit import service
from territory_service.logs import request_id_var
from territory_service.security.principal import Principal

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSALS = frozenset({401, 403})
_ID = re.compile(r"[0-9a-fA-F-]{32,36}")


def resource_ids(scope: Scope, message: Message) -> list[str]:
    """The ids a request names in its path, and the id of what it created (Location)."""
    ids = [str(value) for value in scope.get("path_params", {}).values()]
    for name, value in message.get("headers", ()):
        if name.lower() == b"location":
            ids.extend(_ID.findall(value.decode("latin-1").rsplit("/", 1)[-1]))
    return list(dict.fromkeys(ids))


_UNCHANGING = "changes_nothing"


async def mark_unchanging(request: Request) -> None:
    """A dependency for POST operations that change nothing: they are not audited."""
    request.state.changes_nothing = True


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_after_audit(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                changes = scope["method"] not in READ_METHODS and not state.get(_UNCHANGING)
                if changes or status in REFUSALS:
                    await self._record(scope, state, message, status)
            await send(message)

        await self.app(scope, receive, send_after_audit)

    async def _record(
        self, scope: Scope, state: dict[str, Any], message: Message, status: int
    ) -> None:
        principal: Principal | None = state.get("principal")
        key_id = principal.key_id if principal else _as_uuid(state.get("audit_key_id"))
        acting = principal.acting_owner if principal else None
        try:
            async with scope["app"].state.session_factory() as session:
                await service.record(
                    session,
                    key_id=key_id,
                    acting_owner_id=acting.id if acting else None,
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    request_id=request_id_var.get(),
                    resource_ids=resource_ids(scope, message),
                )
        except Exception:
            # The request's own change is committed already; losing its answer would be worse.
            logger.exception("audit entry could not be written")


def _as_uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
