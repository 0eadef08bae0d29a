"""Every status the API answers, and every header the contract names, must be declared for its
operation in the OpenAPI document; every header declared as required must be sent."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from territory_service.api.operation_index import operations_at


class UndeclaredStatus(AssertionError):
    pass


class UndeclaredHeader(AssertionError):
    pass


# Headers a generated client reads from an answer; any other header is transport detail.
CONTRACT_HEADERS = ("ETag", "Location", "Retry-After", "Idempotent-Replayed", "X-Request-ID")


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
        headers = declared[str(response.status_code)].get("headers", {})
        for name in CONTRACT_HEADERS:
            declaration = headers.get(name)
            if name in response.headers and declaration is None:
                raise UndeclaredHeader(
                    f"{request.method} {request.url.path} sent {name} with "
                    f"{response.status_code}, which {operation['operationId']} does not declare"
                )
            if declaration is not None and declaration["required"] and name not in response.headers:
                raise UndeclaredHeader(
                    f"{request.method} {request.url.path} answered {response.status_code} without "
                    f"{name}, which {operation['operationId']} declares as always sent"
                )
