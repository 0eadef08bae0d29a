"""Domain errors and their RFC 9457 problem+json form.

Domain code raises subclasses of `ServiceError`; one handler turns each into a problem document
with a stable `type` per error kind. Nothing below the HTTP edge knows about responses.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

PROBLEM_TYPE_PREFIX = "urn:territory-service:problem:"


class ServiceError(Exception):
    """Base of every error the service reports to a client."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(ServiceError):
    status = 404
    slug = "not-found"
    title = "Resource not found"

    def __init__(self, resource: str, resource_id: object) -> None:
        super().__init__(
            f"{resource} {resource_id} does not exist", resource=resource, id=str(resource_id)
        )


class Conflict(ServiceError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


class AlreadyExists(Conflict):
    slug = "already-exists"
    title = "A resource with the same unique key exists"

    def __init__(self, detail: str, *, existing_id: uuid.UUID | None, field: str) -> None:
        super().__init__(
            detail, existing_id=None if existing_id is None else str(existing_id), field=field
        )


class StillReferenced(Conflict):
    slug = "still-referenced"
    title = "The resource is still referenced"


class HierarchyCycle(Conflict):
    slug = "hierarchy-cycle"
    title = "The change would make a cycle"


class StaleVersion(ServiceError):
    status = 412
    slug = "stale-version"
    title = "The resource changed since it was read"

    def __init__(self, resource: str, *, expected: str, current: int) -> None:
        super().__init__(
            f"{resource} is at version {current}, the request expected {expected}",
            current_version=current,
        )


class ConcurrentUpdate(Conflict):
    """A race lost to another request; nothing was changed, so the request can be retried."""

    slug = "concurrent-update"
    title = "Another request changed the resource at the same time"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "0"}

    def __init__(self, resource: str) -> None:
        super().__init__(f"{resource} was changed by a concurrent request; read it again and retry")


class DatabaseUnavailable(ServiceError):
    """The database could not be reached, or went away mid-request (a restart, a crash, a cut
    connection): whatever the step, the request's transaction was not committed, unless only
    the answer to its COMMIT was lost, which no client of a database can tell apart.
    `transaction.database_unavailable` decides which failures these are."""

    status = 503
    slug = "database-unavailable"
    title = "The database is unavailable"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}

    def __init__(self) -> None:
        super().__init__(
            "the database connection failed; nothing was changed, retry the request "
            "(with the same Idempotency-Key)"
        )


class InvalidReference(ServiceError):
    """A field names another resource that does not exist (422: the request is wrong)."""

    status = 422
    slug = "invalid-reference"
    title = "A referenced resource does not exist"

    def __init__(self, field: str, resource: str, resource_id: object) -> None:
        super().__init__(
            f"{field}: {resource} {resource_id} does not exist",
            errors=[{"pointer": f"#/{field}", "detail": f"{resource} does not exist"}],
        )


class InvalidCursor(ServiceError):
    status = 422
    slug = "invalid-cursor"
    title = "The pagination cursor is not valid"

    def __init__(self, parameter: str = "cursor") -> None:
        super().__init__(
            f"{parameter} is not a cursor this list returned",
            errors=[{"parameter": parameter, "location": "query", "detail": "malformed cursor"}],
        )


class PreconditionRequired(ServiceError):
    status = 428
    slug = "precondition-required"
    title = "This change needs If-Match"

    def __init__(self) -> None:
        super().__init__(
            "send If-Match with the version (the ETag) this change is based on",
            errors=[{"parameter": "If-Match", "location": "header", "detail": "missing"}],
        )


class InvalidPrecondition(ServiceError):
    status = 400
    slug = "invalid-precondition"
    title = "If-Match header is not valid"


class Unauthenticated(ServiceError):
    status = 401
    slug = "unauthenticated"
    title = "Missing or invalid credentials"
    headers = {"WWW-Authenticate": 'Bearer realm="territory-service"'}


class Forbidden(ServiceError):
    """The key is valid but may not do this (missing scope, acting-user rules)."""

    status = 403
    slug = "forbidden"
    title = "Not allowed with these credentials"


class OutOfScope(Forbidden):
    """The change would leave something the key may not see (outside its territories)."""

    slug = "out-of-scope"
    title = "Outside the key's territory scope"


class InvalidIdempotencyKey(ServiceError):
    status = 400
    slug = "invalid-idempotency-key"
    title = "Idempotency-Key header is not valid"

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail,
            errors=[{"parameter": "Idempotency-Key", "location": "header", "detail": detail}],
        )


class IdempotencyKeyInFlight(Conflict):
    """The first request with this key has not answered yet; retry once it has."""

    slug = "idempotency-key-in-flight"
    title = "A request with this Idempotency-Key is still running"
    headers = {"Retry-After": "1"}

    def __init__(self) -> None:
        super().__init__(
            "the first request sent with this Idempotency-Key has not finished; retry shortly "
            "to receive its answer"
        )


class IdempotencyKeyReused(ServiceError):
    status = 422
    slug = "idempotency-key-reused"
    title = "Idempotency-Key was used for another request"

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was first used for a request with another method, path or "
            "body; use a new key for a new request",
            errors=[
                {"parameter": "Idempotency-Key", "location": "header", "detail": "already used"}
            ],
        )
