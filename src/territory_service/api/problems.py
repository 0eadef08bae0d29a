"""RFC 9457 problem documents: the schema, the OpenAPI declarations and the exception handlers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from territory_service.api.operation_index import operations_at
from territory_service.errors import PROBLEM_TYPE_PREFIX, ServiceError
from territory_service.logs import request_id_var

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"


class ProblemItem(BaseModel):
    """One thing wrong with a request: where it is and what is wrong with it."""

    model_config = ConfigDict(extra="allow")

    detail: str
    pointer: str | None = Field(
        default=None, description="JSON Pointer into the request body, e.g. `#/items/3/name`."
    )
    parameter: str | None = Field(
        default=None, description="Name of the query, path or header parameter."
    )
    location: str | None = Field(default=None, description="`body`, `query`, `path` or `header`.")
    type: str | None = Field(default=None, description="Machine-readable error code.")


class Problem(BaseModel):
    """An RFC 9457 problem document. Extra members depend on `type`."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[PROBLEM_TYPE_PREFIX + "not-found"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemItem] | None = None


STATUS_DESCRIPTIONS = {
    400: "Malformed request or header",
    401: "Missing or invalid credentials",
    403: "Credentials lack the needed scope",
    404: "Resource not found",
    405: "Method not allowed",
    409: "Conflict with the current state",
    412: "Precondition failed: the resource changed since it was read (If-Match)",
    413: "Request body too large",
    422: "Request failed validation",
    428: "Precondition required: send If-Match",
    500: "Unexpected error",
    503: "Service unavailable",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problem statuses an operation can answer."""
    return {
        status: {
            "description": STATUS_DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
        }
        # Every operation may meet a failed database connection (503, retry) or a bug (500).
        for status in sorted({*statuses, 422, 500, 503})
    }


def problem_response(
    request: Request | None,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str | None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = problem_body(request, status=status, slug=slug, title=title, detail=detail)
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_body(
    request: Request | None, *, status: int, slug: str, title: str, detail: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    body["request_id"] = request_id_var.get()
    return body


def service_problem(request: Request | None, exc: ServiceError) -> dict[str, Any]:
    """The problem document of a domain error (also for one item of a batch answer)."""
    body = problem_body(
        request, status=exc.status, slug=exc.slug, title=exc.title, detail=exc.detail
    )
    body.update(exc.extensions)
    return body


def validation_items(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI error entries as problem items pointing at the offending input."""
    items = []
    for error in errors:
        location, *path = error.get("loc", ()) or ("body",)
        item: dict[str, Any] = {"detail": error.get("msg", "invalid"), "type": error.get("type")}
        if location == "body":
            item["location"] = "body"
            item["pointer"] = "#/" + "/".join(str(part) for part in path)
        elif location in {"query", "path", "header", "cookie"}:
            item["location"] = location
            item["parameter"] = ".".join(str(part) for part in path)
        else:
            item["location"] = "body"
            item["pointer"] = "#/" + "/".join(str(part) for part in (location, *path))
        items.append(item)
    return items


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse(
        service_problem(request, exc),
        status_code=exc.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=exc.headers or None,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = validation_items(exc.errors())
    where = ", ".join(item.get("pointer") or item.get("parameter") or "" for item in items[:5])
    return problem_response(
        request,
        status=422,
        slug="validation-error",
        title="Request failed validation",
        detail=f"{len(items)} invalid value(s): {where}",
        errors=items,
    )


_HTTP_SLUGS = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    title = STATUS_DESCRIPTIONS.get(status, "HTTP error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    if status == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    headers = dict(exc.headers) if exc.headers else {}
    if status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(
        request,
        status=status,
        slug=_HTTP_SLUGS.get(status, f"http-{status}"),
        title=title,
        detail=detail,
        headers=headers or None,
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method served at this path (Starlette's own header names only one route's)."""
    operations = operations_at(request.app.openapi(), request.url.path)
    return sorted(method.upper() for method in operations)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
