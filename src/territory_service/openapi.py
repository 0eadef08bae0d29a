"""The OpenAPI document: generated from the app, committed in `openapi/`, checked in CI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from territory_service.api.problems import Problem, problem_responses
from territory_service.audit.middleware import mark_unchanging
from territory_service.idempotency import keys as idempotency_keys
from territory_service.schemas import SentWithETag

DOCUMENT_PATH = Path("openapi") / "openapi.json"


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the problem schemas the error responses refer to."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    _declare_idempotency_keys(document, app.routes)
    _declare_refusals(document)
    _declare_response_headers(document)
    _parameters_are_never_null(document)
    _declare_links(document)
    _keys_only_as_listed(document["components"]["schemas"])
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def _declare_refusals(document: dict[str, Any]) -> None:
    """Answers every protected operation can give, declared once here rather than per route:
    401 and 403 when it needs a key; 400 (not JSON, not UTF-8) and 413 when it takes a body.
    An operation that declares 428 answers it when `If-Match` is missing, so there the header
    is required."""
    for operations in document["paths"].values():
        for operation in operations.values():
            statuses = []
            if operation.get("security"):
                statuses += [401, 403]
            if "requestBody" in operation:
                statuses += [400, 413]
            responses = operation["responses"]
            if "428" in responses:
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "header" and parameter["name"] == "If-Match":
                        parameter["required"] = True
            for status, declaration in problem_responses(*statuses).items():
                responses.setdefault(str(status), declaration)
            operation["responses"] = dict(sorted(responses.items()))


def _declare_links(document: dict[str, Any]) -> None:
    """OpenAPI links, so tools and people can follow the flows: the `id` a 201 answers is the
    path parameter of every operation below the collection it was created in (create a
    customer → read it, its ownership, its explanation; create a transfer → approve it), and
    the job a 202 answers is read at `/v1/jobs/{job_id}`."""
    paths = document["paths"]
    for path, operations in paths.items():
        for operation in operations.values():
            responses = operation["responses"]
            for status, below in (("201", path), ("202", "/v1/jobs")):
                if status not in responses:
                    continue
                links = responses[status].setdefault("links", {})
                for target, target_operations in paths.items():
                    created = re.match(re.escape(below) + r"/\{(\w+)\}", target)
                    if created is None:
                        continue
                    for linked in target_operations.values():
                        parameters = {
                            name: f"$request.path.{name}"
                            for name in re.findall(r"\{(\w+)\}", path)
                            if "{" + name + "}" in target
                        } | {created.group(1): "$response.body#/id"}
                        links[linked["operationId"]] = {
                            "operationId": linked["operationId"],
                            "parameters": parameters,
                        }
                if not links:
                    del responses[status]["links"]


def _keys_only_as_listed(schema: Any) -> None:
    """A dict whose keys pydantic constrains is shown with `patternProperties`, which leaves
    any other key allowed by the schema but refused by the server: say that none is."""
    if isinstance(schema, dict):
        if "patternProperties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _keys_only_as_listed(value)
    elif isinstance(schema, list):
        for value in schema:
            _keys_only_as_listed(value)


def _parameters_are_never_null(document: dict[str, Any]) -> None:
    """A query or header parameter is text or absent: `Optional` makes FastAPI show a `null`
    branch, which a client would send as the text "null"."""
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                branches = [part for part in schema.get("anyOf", []) if part != {"type": "null"}]
                if len(branches) == 1 and len(schema["anyOf"]) == 2:
                    del schema["anyOf"]
                    parameter["schema"] = {**branches[0], **schema}
                if parameter["schema"].get("default", "") is None:
                    del parameter["schema"]["default"]


def _header(description: str, schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


_REQUEST_ID = _header(
    "The request's id (the caller's `X-Request-ID`, or one made up); also in logs and problems.",
    {"type": "string"},
    required=True,
)
_ETAG = _header(
    'The version of what the body shows, as an entity tag (`"7"`): send it back in `If-Match`.',
    {"type": "string", "pattern": '^"[0-9]+"$'},
    required=True,
)
_LOCATION = _header(
    "Where the created resource (or the job doing the work) can be read.",
    {"type": "string", "format": "uri-reference"},
    required=True,
)
_RETRY_AFTER = _header(
    "Seconds to wait before retrying; nothing was changed.",
    {"type": "integer", "minimum": 0},
    required=True,
)
_REPLAYED = _header(
    "`true` when this is the kept answer to an earlier request with the same Idempotency-Key.",
    {"type": "string", "enum": ["true"]},
    required=False,
)


def _declare_response_headers(document: dict[str, Any]) -> None:
    """The headers each answer carries: `X-Request-ID` on all; `ETag` on a success showing a
    versioned resource (`SentWithETag`); `Location` on 201 and 202; `Retry-After` on 503 and on
    a 409 that asks for a retry; `Idempotent-Replayed` on a kept answer replayed."""
    versioned = {f"#/components/schemas/{model.__name__}" for model in _subclasses(SentWithETag)}
    for operations in document["paths"].values():
        for operation in operations.values():
            replayable = any(
                parameter["name"] == idempotency_keys.PARAMETER["name"]
                for parameter in operation.get("parameters", [])
            )
            for status, response in operation["responses"].items():
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = _REQUEST_ID
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if status.startswith("2") and schema.get("$ref") in versioned:
                    headers["ETag"] = _ETAG
                if status in ("201", "202"):
                    headers["Location"] = _LOCATION
                if status == "503":
                    headers["Retry-After"] = _RETRY_AFTER
                if status == "409":
                    headers["Retry-After"] = {**_RETRY_AFTER, "required": False}
                if replayable and not status.startswith("5"):
                    headers[idempotency_keys.REPLAYED_HEADER] = _REPLAYED


def _subclasses(model: type[Any]) -> list[type[Any]]:
    return [model, *(sub for child in model.__subclasses__() for sub in _subclasses(child))]


def _declare_idempotency_keys(document: dict[str, Any], routes: list[BaseRoute]) -> None:
    """Every POST that creates or changes something takes `Idempotency-Key`, and can answer 409
    while the key's first request runs, 422 when the key was used for another request and 400
    when the key is malformed. The middleware honours the key where this document declares it."""
    for context in iter_route_contexts(routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        if "POST" not in (context.methods or ()) or _changes_nothing(context.dependant):
            continue
        operation = document["paths"].get(context.path_format, {}).get("post")
        if operation is None or operation["operationId"] in idempotency_keys.WITHOUT_REPLAY:
            continue
        operation.setdefault("parameters", []).append(dict(idempotency_keys.PARAMETER))
        responses = operation["responses"]
        for status, declaration in problem_responses(400, 409).items():
            responses.setdefault(str(status), declaration)


def _changes_nothing(dependant: Dependant) -> bool:
    """Whether the operation, or any dependency of it, is marked with `mark_unchanging`."""
    return dependant.call is mark_unchanging or any(
        _changes_nothing(dependency) for dependency in dependant.dependencies
    )
