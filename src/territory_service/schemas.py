"""Building blocks for the API schemas of every domain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictFloat,
    StrictInt,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import core_schema


class InputModel(BaseModel):
    """A request body: unknown fields are an error, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def provided(self) -> dict[str, Any]:
        """The fields the client actually sent (a PATCH changes only these)."""
        return self.model_dump(include=self.model_fields_set)


def examples(*values: dict[str, Any]) -> ConfigDict:
    """A request body's examples, shown in the document (and checked against the model)."""
    return ConfigDict(json_schema_extra={"examples": list(values)})


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _is_none(value: Any) -> bool:
    return value is None


def by_case(description: str) -> Any:
    """A field of an object whose fields apply by case (a conflict's kind, a trace step): left
    out of the answer when it does not apply, rather than listed as null."""
    return Field(default=None, exclude_if=_is_none, description=description)


class SentWithETag(OutputModel):
    """An answer that carries its `version` as the `ETag` header (declared in the document)."""


class ResourceOut(SentWithETag):
    version: int = Field(description="Increases on every change; also sent as the `ETag`.")
    created_at: dt.datetime
    updated_at: dt.datetime


def _blank_to_none(value: Any) -> Any:
    """Blank optional text means "not set": CRMs often send "" for an empty field."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


BlankIsNone = BeforeValidator(_blank_to_none)

# Text a database column can hold: PostgreSQL's text refuses U+0000, and a lone surrogate is not
# Unicode at all (SQLite would store both). Every request string carries this pattern, or one that
# implies it, so the schema says what the server refuses. (A lone surrogate can only arrive as a
# `\\uD800` escape in JSON, never as UTF-8; it is refused too, and the descriptions say so, but
# is left out of the pattern, which generators cannot take with surrogate ranges.)
STORABLE_TEXT = r"^[^\x00]*$"
# The same, for text that is trimmed and must keep a character: not blank. "Space" is spelled
# out (every character Python or pydantic's trimming removes), since `\s` means different sets
# in different regex engines.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
VISIBLE_TEXT = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains the NUL character (U+0000), which text cannot hold")
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ValueError("contains a lone surrogate, which is not Unicode text") from exc
    return value


class _Storable:
    """Marks a string type as storable text: checked, and its pattern in the JSON schema
    (`VISIBLE_TEXT` for a trimmed string that must not be blank, which the trimming checks)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_storable, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", self.pattern)
        return json_schema


Storable = _Storable(STORABLE_TEXT)
NotBlank = _Storable(VISIBLE_TEXT)
StorableText = Annotated[str, Storable]


def trimmed(max_length: int) -> StringConstraints:
    """Text that is trimmed, then must keep 1 to `max_length` characters."""
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Name = Annotated[str, trimmed(200), NotBlank]
ExternalId = Annotated[str, trimmed(128), NotBlank]
ShortText = Annotated[str, trimmed(64), NotBlank]
LongText = Annotated[str, trimmed(2000), NotBlank]
Reason = Annotated[str, trimmed(500), NotBlank]
Tag = Annotated[str, trimmed(64), NotBlank]
Tier = Annotated[str, trimmed(32), NotBlank]
_EMAIL_PART = rf"[^@\x00{_SPACE}]+"  # spaces spelled out, as for VISIBLE_TEXT
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=254,
        pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$",
    ),
    Storable,
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


class OneError:
    """For a union of kinds of value: one error saying what is accepted, at the value itself,
    rather than one per member (whose names would otherwise land in the error's pointer)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind, self.message = kind, message

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        if schema["type"] != "union":
            raise TypeError(f"OneError marks a union, not a {schema['type']} schema")
        return {**schema, "custom_error_type": self.kind, "custom_error_message": self.message}


# Numbers in facts and rule conditions are what JSON readers take them for: IEEE-754 doubles.
# Beyond ±(2^53 - 1) a double cannot tell an integer from its neighbours, so every number (an
# integer or not) must lie within that range: compared exactly, and said in the schema.
MAX_EXACT_NUMBER = 2**53 - 1
NUMBER_RANGE = "a number within ±(2^53 - 1) = ±9007199254740991"
Number = Annotated[
    Annotated[StrictInt, Field(ge=-MAX_EXACT_NUMBER, le=MAX_EXACT_NUMBER)]
    | Annotated[StrictFloat, Field(ge=-MAX_EXACT_NUMBER, le=MAX_EXACT_NUMBER, allow_inf_nan=False)],
    OneError("number", f"must be {NUMBER_RANGE}"),
]
Capacity = Annotated[int, Field(ge=0, le=1_000_000)]


class PageOut(OutputModel):
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


def _reject_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may be omitted but not null")
    return value


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


T = TypeVar("T")
# A PATCH field that may be left out but not cleared: `None` in Python means "not sent", and the
# schema shows the field as non-nullable without a default, so clients cannot build a null.
NotNull = Annotated[
    T | SkipJsonSchema[None], BeforeValidator(_reject_null), Field(json_schema_extra=_no_default)
]


def _in_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC)
    except OverflowError as exc:  # e.g. year 1 at a positive offset
        raise ValueError("the timestamp is out of range") from exc


# A point in time the caller gives: with its offset (naive times are refused), kept in UTC.
UTCTimestamp = Annotated[AwareDatetime, AfterValidator(_in_utc)]
