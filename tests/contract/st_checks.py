"""Checks of our own, loaded into schemathesis through `SCHEMATHESIS_HOOKS`."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis import CheckContext, Response
from schemathesis.core.failures import Failure
from schemathesis.generation.case import Case

from territory_service.ownership.schemas import NEEDS_A_TARGET

VALIDATION_ERROR = "urn:territory-service:problem:validation-error"
# Validation rules across fields that the document states in words (the operation's
# description), not in the schema; a refusal for one of these alone is no schema gap.
CROSS_FIELD_RULES = (NEEDS_A_TARGET,)


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
            problem = json.loads(response.text)
        except ValueError:
            problem = {}
        stated = all(
            any(rule in error.get("detail", "") for rule in CROSS_FIELD_RULES)
            for error in problem.get("errors") or [{}]
        )
        malformed = problem.get("type") == VALIDATION_ERROR and not stated
    if malformed:
        raise SchemaSaysTooLittle(
            operation=case.operation.label,
            title="Schema-valid request failed validation",
            message=f"{response.status_code}: {response.text[:500]}",
        )
    return True
