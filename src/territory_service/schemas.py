"""Building blocks for the API schemas of every domain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints


class InputModel(BaseModel):
    """A request body: unknown fields are an error, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def provided(self) -> dict[str, Any]:
        """The fields the client actually sent (a PATCH changes only these)."""
        return self.model_dump(include=self.model_fields_set)


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ResourceOut(OutputModel):
    version: int = Field(description="Increases on every change; also sent as the `ETag`.")
    created_at: dt.datetime
    updated_at: dt.datetime


def _blank_to_none(value: Any) -> Any:
    """Blank optional text means "not set": CRMs often send "" for an empty field."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


BlankIsNone = BeforeValidator(_blank_to_none)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]
OptionalShortText = Annotated[ShortText | None, BlankIsNone]
OptionalLongText = Annotated[LongText | None, BlankIsNone]
OptionalEmail = Annotated[Email | None, BlankIsNone]
OptionalCode = Annotated[Code | None, BlankIsNone]
Capacity = Annotated[int, Field(ge=0, le=1_000_000)]


class PageOut(OutputModel):
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


def reject_null(value: Any) -> Any:
    """For PATCH fields that may be left out but not cleared."""
    if value is None:
        raise ValueError("may be omitted but not null")
    return value
