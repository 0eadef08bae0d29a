"""Refuses request bodies larger than the configured limit with 413, before they are read."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from territory_service.api.problems import problem_response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return f"the request body exceeds {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = problem_response(
                    None,
                    status=413,
                    slug="payload-too-large",
                    title="Request body too large",
                    detail=self._too_large(),
                    max_bytes=self.max_bytes,
                )
                await response(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # A body without Content-Length (chunked) that grows too large: FastAPI turns
                # this into the same 413 problem document.
                raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, counting_receive, send)
