"""Honours `Idempotency-Key` on the POST operations that declare it.

It sits inside the request context (so every answer, replays included, carries a request id) and
outside the audit trail (a replay or a refused key changes nothing, so neither is audited; the
first execution is). The key belongs to the API key in `Authorization`; a request without a
usable key passes through untouched and the operation answers 401 as usual.

The request body is read once, fingerprinted and handed on; the answer goes to the client as it
is produced and is kept when it is complete, just before its last part is sent, so a client never
holds an answer whose retry would not be replayed. Answers of 5xx, exceptions and requests that
never answer give the key back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from territory_service.api.operation_index import operations_at
from territory_service.api.problems import problem_response
from territory_service.config import Settings
from territory_service.errors import ServiceError
from territory_service.idempotency import keys, service
from territory_service.idempotency.service import Claim, KeptAnswer
from territory_service.security.secrets import hash_secret, looks_like_key

logger = logging.getLogger(__name__)

METHODS = frozenset({"POST"})
# The headers of an answer that a replay repeats; the rest belong to the exchange, not to it.
KEPT_HEADERS = frozenset({"content-type", "location", "etag", "www-authenticate"})
_HEADER = keys.HEADER.lower().encode()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.retention = dt.timedelta(hours=settings.idempotency_ttl_hours)
        self.lease = dt.timedelta(seconds=settings.idempotency_lease_seconds)
        self.max_body_bytes = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        values = _header_values(scope, _HEADER)
        secret = _bearer_secret(scope)
        if not values or secret is None or not self._honoured(scope):
            await self.app(scope, receive, send)
            return
        try:
            key = keys.parse_key(values)
        except ServiceError as exc:
            try:
                callers = await _is_callers_key(scope, secret)
            except ServiceError as unavailable:  # the database, while finding out
                await _send_problem(scope, receive, send, unavailable)
                return
            if callers:
                await _send_problem(scope, receive, send, exc)
            else:
                await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_body_bytes:
            await self.app(scope, receive, send)  # answered 413 further in
            return
        parts, complete = await _read_body(receive, self.max_body_bytes)
        receive = _replaying(parts, receive)
        if not complete:  # too large (413 further in) or the client left
            await self.app(scope, receive, send)
            return
        fingerprint = keys.fingerprint(
            method=scope["method"],
            target=_target(scope),
            acting_as=b"".join(_header_values(scope, b"x-act-as")),
            if_match=b"".join(_header_values(scope, b"if-match")),
            body=b"".join(part.get("body", b"") for part in parts),
        )
        try:
            async with _session(scope) as session:
                outcome = await service.claim(
                    session,
                    secret_hash=hash_secret(secret),
                    key=key,
                    fingerprint=fingerprint,
                    retention=self.retention,
                    lease=self.lease,
                )
        except ServiceError as exc:
            await _send_problem(scope, receive, send, exc)
            return
        if outcome is None:
            await self.app(scope, receive, send)
        elif isinstance(outcome, KeptAnswer):
            await _replay(outcome, send)
        else:
            await self._run(scope, receive, send, outcome)

    def _honoured(self, scope: Scope) -> bool:
        operations = operations_at(scope["app"].openapi(), scope["path"])
        return keys.declares_key(operations.get(scope["method"].lower()))

    async def _run(self, scope: Scope, receive: Receive, send: Send, claim: Claim) -> None:
        answer = _AnswerRecorder(scope, claim, send)
        finished = asyncio.Event()
        heartbeat = asyncio.create_task(self._keep_lease(scope, claim, finished))
        try:
            await self.app(scope, receive, answer.send)
        except BaseException:
            if not answer.settled:
                await asyncio.shield(answer.give_back())
            raise
        finally:
            # Told rather than cancelled, so that a renewal under way ends its transaction.
            finished.set()
            await heartbeat
        if not answer.settled:  # the app returned without a complete answer
            await answer.give_back()

    async def _keep_lease(self, scope: Scope, claim: Claim, finished: asyncio.Event) -> None:
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), self.lease.total_seconds() / 3)
            if finished.is_set():
                return
            try:
                async with _session(scope) as session:
                    await service.extend_lease(session, claim=claim, lease=self.lease)
            except Exception:
                logger.warning("could not extend the lease on an idempotency key", exc_info=True)


class _AnswerRecorder:
    """Passes the answer on, keeping it when it is complete or giving the key back on a 5xx."""

    def __init__(self, scope: Scope, claim: Claim, send: Send) -> None:
        self.scope = scope
        self.claim = claim
        self.downstream = send
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.settled = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in message.get("headers", ())
                if name.decode("latin-1").lower() in KEPT_HEADERS
            ]
            # Not a final answer: a failure, or one that asks to retry (a lost race), which
            # changed nothing; the key goes back so that the retry runs.
            retry = any(name.lower() == b"retry-after" for name, _ in message.get("headers", ()))
            if self.status >= 500 or retry:
                await self.give_back()
        elif message["type"] == "http.response.body" and not self.settled:
            self.body.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._keep()
        await self.downstream(message)

    async def _keep(self) -> None:
        self.settled = True
        answer = KeptAnswer(status=self.status, headers=self.headers, body=b"".join(self.body))
        try:
            async with _session(self.scope) as session:
                await service.keep_answer(session, claim=self.claim, answer=answer)
        except Exception:
            # The change is made; a retry after the lease lapses would make it again, but
            # withholding the answer now would not undo it.
            logger.exception("the answer to an idempotent request could not be kept")

    async def give_back(self) -> None:
        self.settled = True
        try:
            async with _session(self.scope) as session:
                await service.give_back(session, claim=self.claim)
        except Exception:
            logger.exception("an idempotency key could not be given back")


def _session(scope: Scope) -> AsyncSession:
    factory: async_sessionmaker[AsyncSession] = scope["app"].state.session_factory
    return factory()


async def _is_callers_key(scope: Scope, secret: str) -> bool:
    async with _session(scope) as session:
        key_id = await service.usable_key_id(session, secret_hash=hash_secret(secret))
    return key_id is not None


def _header_values(scope: Scope, name: bytes) -> list[bytes]:
    return [value for header, value in scope.get("headers", ()) if header.lower() == name]


def _bearer_secret(scope: Scope) -> str | None:
    for value in _header_values(scope, b"authorization"):
        scheme, _, credentials = value.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and looks_like_key(credentials.strip()):
            return credentials.strip()
    return None


def _declared_length(scope: Scope) -> int:
    for value in _header_values(scope, b"content-length"):
        if value.isdigit():
            return int(value)
    return 0


def _target(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return str(scope["path"]) + ("?" + query if query else "")


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bool]:
    """The request's messages up to the end of its body; False when the body grew past
    `limit` or the client disconnected first."""
    parts: list[Message] = []
    size = 0
    while True:
        message = await receive()
        parts.append(message)
        if message["type"] != "http.request":
            return parts, False
        size += len(message.get("body", b""))
        if size > limit:
            return parts, False
        if not message.get("more_body", False):
            return parts, True


def _replaying(parts: list[Message], receive: Receive) -> Receive:
    """A `receive` that hands out the messages already read, then the client's own."""
    pending = list(parts)

    async def replaying_receive() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replaying_receive


async def _replay(answer: KeptAnswer, send: Send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    if answer.status not in (204, 304):
        headers.append((b"content-length", str(len(answer.body)).encode()))
    headers.append((keys.REPLAYED_HEADER.lower().encode(), b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _send_problem(scope: Scope, receive: Receive, send: Send, exc: ServiceError) -> None:
    response = problem_response(
        Request(scope),
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers or None,
        **exc.extensions,
    )
    await response(scope, receive, send)
