"""Which documented operations serve a concrete request path."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)
def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$"
    )


def operations_at(document: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    """The operations serving a concrete request path, by lower-case method.

    Literal segments win over parameters (`/v1/customers/batch` before `/{customer_id}`), as in
    the router, because templates with fewer parameters are tried first.
    """
    found: dict[str, dict[str, Any]] = {}
    templates = sorted(document["paths"], key=lambda template: template.count("{"))
    for template in templates:
        if _template_pattern(template).match(path):
            for method, operation in document["paths"][template].items():
                found.setdefault(method, operation)
    return found
