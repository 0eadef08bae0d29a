"""Checks of our own, loaded into schemathesis through `SCHEMATHESIS_HOOKS`."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis import CheckContext, Response
from schemathesis.core.failures import Failure
from schemathesis.generation.case import Case

VALIDATION_ERROR = "urn:territory-service:problem:validation-error"


class SchemaSaysTooLittle(Failure):
    """A request the document allows failed the server's own validation."""


@schemathesis.check
def valid_request_passes_validation(ctx: CheckContext, response: Response, case: Case[Any]) -> bool:
    """A schema-valid request may be refused for a business rule (412, a 422 of another problem
    type), never as malformed (400) or invalid (422 `validation-error`): that refusal the
    document could have said, so a generated client could not have built the request."""
    del ctx
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return True
    malformed = response.status_code == 400
    if response.status_code == 422:
        try:
            malformed = json.loads(response.text).get("type") == VALIDATION_ERROR
        except ValueError:
            malformed = True
    if malformed:
        raise SchemaSaysTooLittle(
            operation=case.operation.label,
            title="Schema-valid request failed validation",
            message=f"{response.status_code}: {response.text[:500]}",
        )
    return True
