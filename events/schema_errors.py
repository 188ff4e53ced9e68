"""Errors of the schema layer (events.schema): `FieldError`, the one shape of every reason an
event is refused or warned about, and the mapping of pydantic's errors onto our rule names.
Error text never echoes raw input unescaped (`text_safe`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

MAX_ERRORS_PER_EVENT = 20
FIELD_NAME_MAX_CHARS = 64


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason an event was refused (or warned about): which field, which rule, in words."""

    field: str
    rule: str
    message: str
    rule_id: int | None = None
    severity: str = "error"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "rule": self.rule, "message": self.message}
        if self.rule_id is not None:
            data["rule_id"] = self.rule_id
        return data


_PYDANTIC_RULE_NAMES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "string_too_long": "max_length",
    "string_too_short": "min_length",
    "too_long": "max_length",
    "literal_error": "allowed_values",
    "string_pattern_mismatch": "no_nul_bytes",
    "string_unicode": "valid_unicode",
    "uuid_parsing": "uuid",
    "uuid_type": "uuid",
    "uuid_version": "uuid",
    "datetime_from_date_parsing": "iso8601",
    "datetime_parsing": "iso8601",
    "datetime_type": "iso8601",
    "datetime_object_invalid": "iso8601",
    "greater_than_equal": "range",
    "less_than_equal": "range",
    "decimal_max_places": "decimal_places",
    "decimal_max_digits": "range",
    "decimal_whole_digits": "range",
    "finite_number": "finite_number",
    "value_error": "format",
    "int_type": "integer",
    "int_from_float": "integer",
    "int_parsing": "integer",
    "int_parsing_size": "range",
    "decimal_parsing": "number",
    "decimal_type": "number",
    "string_type": "string",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
}
_PATTERN_MESSAGE = "may not contain NUL bytes"
_NAME_MESSAGE = "must be printable: no control characters, no leading or trailing spaces"
NAIVE_TIMESTAMP_WARNING = FieldError(
    "timestamp", "utc_offset", "has no UTC offset; it was taken as UTC", severity="warning"
)
IDENTITY_MISSING = FieldError("user_id", "required", "is required when anonymous_id is absent")


def text_safe(value: Any, limit: int = FIELD_NAME_MAX_CHARS) -> str:
    """Printable, storable text for anything taken from a payload (a key, a value).

    Lone surrogates and NUL become backslash escapes (neither PostgreSQL nor UTF-8 JSON can
    carry them) and the result is cut to `limit` characters.
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def errors_from_pydantic(exc: ValidationError) -> list[FieldError]:
    errors = []
    details = exc.errors(include_url=False, include_input=False, include_context=False)
    for error in details[:MAX_ERRORS_PER_EVENT]:
        location = ".".join(text_safe(part) for part in error["loc"]) or "event"
        rule = _PYDANTIC_RULE_NAMES.get(error["type"], error["type"])
        if rule == "no_nul_bytes" and location == "event_type":
            rule, message = "printable", _NAME_MESSAGE
        elif rule == "no_nul_bytes":
            message = _PATTERN_MESSAGE
        else:
            message = text_safe(error["msg"].removeprefix("Value error, "), 300)
        errors.append(FieldError(field=location, rule=rule, message=message))
    if len(details) > MAX_ERRORS_PER_EVENT:
        more = len(details) - MAX_ERRORS_PER_EVENT
        errors.append(FieldError("event", "max_errors", f"and {more} more errors not listed"))
    return errors
