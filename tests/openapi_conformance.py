"""Every status the API answers must be declared for its operation in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from territory_service.api.operation_index import operations_at


class UndeclaredStatus(AssertionError):
    pass


class DeclaredResponses:
    def __init__(self, app: FastAPI) -> None:
        self.document: dict[str, Any] = app.openapi()

    async def check(self, response: httpx.Response) -> None:
        request = response.request
        operations = operations_at(self.document, request.url.path)
        operation = operations.get(request.method.lower())
        if operation is None:
            return  # unknown routes and methods: the app-wide 404 and 405 answers
        declared = operation["responses"]
        if str(response.status_code) not in declared:
            raise UndeclaredStatus(
                f"{request.method} {request.url.path} answered {response.status_code}, which "
                f"{operation['operationId']} does not declare (declared: {sorted(declared)})"
            )
