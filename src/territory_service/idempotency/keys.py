"""The `Idempotency-Key` header: what a valid key is, what a request's fingerprint covers, and
which operations honour it (those whose OpenAPI operation declares the header)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from territory_service.errors import InvalidIdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_LENGTH = 255
# Printable ASCII, space included (a key may be any opaque token a client makes up).
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
PATTERN = "^[ -~]+$"

# Operations that change something yet keep no answers: theirs carry a secret that the service
# stores only as a hash (`POST /v1/api-keys`), so there is nothing it could replay.
WITHOUT_REPLAY = frozenset({"create_api_key"})

PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: a request repeated with the same key, method, path and body is "
        "not executed again but answered with the first answer (marked `Idempotent-Replayed: "
        "true`). The same key with another request answers 422, and 409 while the first is "
        "still running. Keys belong to the API key that sends them and are kept at least 24 "
        "hours; a first answer of 5xx is not kept, so a retry executes again."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH, "pattern": PATTERN},
}


def parse_key(values: list[bytes]) -> str:
    """The key in the header's values, or `InvalidIdempotencyKey` saying what is wrong."""
    if len(values) != 1:
        raise InvalidIdempotencyKey(f"send {HEADER} once, not {len(values)} times")
    try:
        key = values[0].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidIdempotencyKey(f"{HEADER} must be printable ASCII") from None
    if not 1 <= len(key) <= MAX_LENGTH:
        raise InvalidIdempotencyKey(f"{HEADER} must be 1 to {MAX_LENGTH} characters long")
    if not _PRINTABLE_ASCII.fullmatch(key):
        raise InvalidIdempotencyKey(f"{HEADER} must be printable ASCII")
    return key


def fingerprint(*, method: str, target: str, acting_as: bytes, if_match: bytes, body: bytes) -> str:
    """What a key was used for: the method, path and query, the owner acted for, the version
    the change is based on (`If-Match`), and the body.

    Each part is length-prefixed, so no two different requests hash the same bytes."""
    digest = hashlib.sha256()
    for part in (method.encode(), target.encode(), acting_as, if_match, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def declares_key(operation: dict[str, Any] | None) -> bool:
    """Whether a documented operation honours `Idempotency-Key`."""
    if operation is None:
        return False
    parameters: Iterable[dict[str, Any]] = operation.get("parameters", ())
    return any(p.get("in") == "header" and p.get("name") == HEADER for p in parameters)
