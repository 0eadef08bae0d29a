"""The OpenAPI document: generated from the app, committed in `openapi/`, checked in CI."""

from __future__ import annotations

import json
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
    401 and 403 when it needs a key, 413 when it takes a body."""
    for operations in document["paths"].values():
        for operation in operations.values():
            statuses = []
            if operation.get("security"):
                statuses += [401, 403]
            if "requestBody" in operation:
                statuses.append(413)
            responses = operation["responses"]
            for status, declaration in problem_responses(*statuses).items():
                responses.setdefault(str(status), declaration)
            operation["responses"] = dict(sorted(responses.items()))


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
