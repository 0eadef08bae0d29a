"""Every status the API answers must be declared for its operation in the OpenAPI document."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.routing import Match


class UndeclaredStatus(AssertionError):
    pass


class DeclaredResponses:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.paths = app.openapi()["paths"]

    def operation(self, method: str, path: str) -> dict[str, object] | None:
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        for route in self.app.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                template: str = getattr(route, "path", "")
                found: dict[str, object] | None = self.paths.get(template, {}).get(method.lower())
                return found
        return None

    async def check(self, response: httpx.Response) -> None:
        operation = self.operation(response.request.method, response.request.url.path)
        if operation is None:
            return  # unknown routes and methods: answered by the app-wide 404/405 handlers
        declared = operation["responses"]
        assert isinstance(declared, dict)
        if str(response.status_code) not in declared:
            raise UndeclaredStatus(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code}, which {operation.get('operationId')} does not declare "
                f"(declared: {sorted(declared)})"
            )
