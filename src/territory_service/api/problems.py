"""RFC 9457 problem documents: the schema, the OpenAPI declarations and the exception handlers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

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
        default=None,
        description="Absolute JSON Pointer (RFC 6901, URI fragment form) into the request body, "
        "e.g. `#/items/3/name`; `#` is the whole body.",
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


# Characters a URI fragment may hold as they are (RFC 3986); `/` is left out, as it separates
# the reference tokens. Anything else in a token is percent-encoded (RFC 6901, section 6).
_FRAGMENT_SAFE = "-._~!$&'()*+,;=:@?"
_REQUEST_LOCATIONS = {"query", "path", "header", "cookie"}


def json_pointer(*parts: str | int) -> str:
    """The absolute JSON Pointer to the value at `parts` of the request body, in URI fragment
    form: `json_pointer("items", 3, "a/b")` is `#/items/3/a~1b`; no parts is `#`, the body."""
    tokens = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "#" + "".join("/" + quote(token, safe=_FRAGMENT_SAFE) for token in tokens)


def nested_pointer(pointer: str, *parts: str | int) -> str:
    """`pointer`, absolute within the value at `parts` of the request body (as a domain error
    about one item of a batch points), made absolute within the whole body."""
    if not pointer.startswith("#"):
        raise ValueError(f"not a JSON pointer in URI fragment form: {pointer!r}")
    return json_pointer(*parts) + pointer[1:]


def validation_items(errors: Sequence[Any], *, document: object = None) -> list[dict[str, Any]]:
    """A request's validation errors (FastAPI's, whose `loc` starts with where the value was
    sent) as problem items; `document` is the request body as it was decoded, if it was."""
    items = []
    for error in errors:
        location, *path = error.get("loc", ()) or ("body",)
        if error.get("type") == "json_invalid":
            items.append(_malformed_json_item(error, document))
        elif location in _REQUEST_LOCATIONS:
            items.append(
                {
                    "detail": error.get("msg", "invalid"),
                    "type": error.get("type"),
                    "location": location,
                    "parameter": ".".join(str(part) for part in path),
                }
            )
        else:
            # A body value's `loc` starts with "body" (FastAPI); anything else is a model's own.
            within: Sequence[Any] = path if location == "body" else (location, *path)
            items.extend(body_validation_items([error | {"loc": within}], document=document))
    return items


def body_validation_items(
    errors: Sequence[Any], *, at: Sequence[str | int] = (), document: object = None
) -> list[dict[str, Any]]:
    """Pydantic's errors about `document`, the value at `at` of the request body (their `loc`
    counts from that value), as problem items with absolute pointers."""
    return [
        {
            "detail": error.get("msg", "invalid"),
            "type": error.get("type"),
            "location": "body",
            "pointer": json_pointer(*at, *_places(error.get("loc", ()), document)),
        }
        for error in errors
    ]


def _places(loc: Sequence[str | int], document: object) -> list[str | int]:
    """The parts of `loc` that name places in `document`. Pydantic also puts the member of a
    union it tried in `loc` (a discriminator's value such as `lte`, or a type's name): a key
    that the object at that point does not have is such a label, unless it is the last part
    (a missing field). Without the document, `loc` is taken as it is. `[key]` marks an error
    in an object's key rather than its value: the pointer names the member."""
    loc = [part for part in loc if part != "[key]"]
    if not isinstance(document, dict | list):
        return loc
    places: list[str | int] = []
    value: object = document
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(value, dict) and isinstance(part, str):
            if part in value:
                places.append(part)
                value = value[part]
            elif last:
                places.append(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            places.append(part)
            value = value[part]
        elif not isinstance(value, dict | list):
            continue  # a label below a scalar value: the error is about the value itself
        else:
            return places + list(loc[position:])
    return places


def _malformed_json_item(error: dict[str, Any], document: object) -> dict[str, Any]:
    """The body is no JSON at all, so no pointer can name a place in it: the item points at the
    whole body and the detail says where decoding stopped (FastAPI gives the character index
    in `loc`, which is no JSON pointer)."""
    loc = tuple(error.get("loc", ()))
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    reason = (error.get("ctx") or {}).get("error") or error.get("msg", "invalid JSON")
    where = ""
    if position is not None:
        where = f" at character {position}"
        if isinstance(document, str):
            line = document.count("\n", 0, position) + 1
            column = position - document.rfind("\n", 0, position)
            where = f" at line {line}, column {column} (character {position})"
    return {
        "detail": f"the body is not valid JSON: {reason}{where}",
        "type": "json_invalid",
        "location": "body",
        "pointer": json_pointer(),
    }


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
    items = validation_items(exc.errors(), document=exc.body)
    where = ", ".join(item.get("pointer") or item.get("parameter") or "" for item in items[:5])
    malformed = [item["detail"] for item in items if item["type"] == "json_invalid"]
    return problem_response(
        request,
        status=422,
        slug="validation-error",
        title="Request failed validation",
        detail=malformed[0] if malformed else f"{len(items)} invalid value(s): {where}",
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
