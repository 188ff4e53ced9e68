"""The schema layer of event validation: types, formats, enums, lengths, per-type requirements.

It is a pydantic v2 TypedDict schema compiled once at import (a TypeAdapter), so validating an
event costs a few microseconds and yields a plain dict, not a model to dump again.
`validate_event_schema` is the one entry point; the quality app layers stored rules on top of it.

Every error names a field and a rule. Error text never echoes raw input unescaped: field names
taken from the payload (unknown keys) are escaped and cut, so NUL bytes, lone surrogates and
100 KB keys can neither break the JSON response nor the database row that keeps the reasons.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, NotRequired
from uuid import UUID

import orjson
import pycountry
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)
CURRENCY_CODES = frozenset(currency.alpha_3 for currency in pycountry.currencies)

EVENT_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout_start",
    "purchase",
)
DEVICE_TYPES = ("desktop", "mobile", "tablet", "other")

PROPERTIES_MAX_BYTES = 8192
PROPERTIES_MAX_DEPTH = 5
PROPERTIES_MAX_KEYS = 100
MAX_MONEY = Decimal("9999999999.99")
MAX_QUANTITY = 100_000
MAX_ERRORS_PER_EVENT = 20
# Years a date-time may be written in (before its UTC offset applies): any offset then stays
# within the years Python's datetime holds (1 to 9999). events.openapi states it as a pattern.
TIMESTAMP_MIN_YEAR = 2
TIMESTAMP_MAX_YEAR = 9998
# The same bound for JSON Schema: a date-time whose year is 0002 to 9998.
TIMESTAMP_YEAR_PATTERN = (
    "^(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
)
TIMESTAMP_RANGE_MESSAGE = (
    f"is out of the supported date range (years {TIMESTAMP_MIN_YEAR} to {TIMESTAMP_MAX_YEAR})"
)
_BIG = float(2**64)  # beyond this a JSON number in properties lost digits
FIELD_NAME_MAX_CHARS = 64


def _country_is_iso(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise ValueError("must be an ISO 3166-1 alpha-2 code in upper case, such as US or DE")
    return value


def _currency_is_iso(value: str) -> str:
    if value and value not in CURRENCY_CODES:
        raise ValueError("must be an ISO 4217 code in upper case, such as USD or EUR")
    return value


# Strings may not contain NUL (PostgreSQL cannot store it). Lone surrogates pass pydantic's str
# check, so `validate_event_schema` finds them with one orjson encode (see _unencodable_errors).
_NO_NUL = r"^[^\x00]*$"
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=_NO_NUL)]
OptionalIdentifier = Annotated[str, Field(max_length=128, pattern=_NO_NUL)]
Url = Annotated[str, Field(max_length=2048, pattern=_NO_NUL)]
Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False, decimal_places=2)]
Quantity = Annotated[int, Field(strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
EventType = Literal[
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout_start",
    "purchase",
]
DeviceType = Literal["desktop", "mobile", "tablet", "other"]


@with_config(ConfigDict(extra="forbid"))
class EventSchema(TypedDict):
    """Wire format of one event, as in the product's original README."""

    event_id: UUID
    event_type: EventType
    timestamp: dt.datetime
    sent_at: NotRequired[dt.datetime | None]
    user_id: Identifier
    session_id: Identifier
    device_type: DeviceType
    country: Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country_is_iso)]
    page_url: NotRequired[Url]
    referrer: NotRequired[Url]
    product_id: NotRequired[OptionalIdentifier]
    category: NotRequired[OptionalIdentifier]
    price: NotRequired[Money | None]
    quantity: NotRequired[Quantity | None]
    currency: NotRequired[Annotated[str, Field(max_length=3), AfterValidator(_currency_is_iso)]]
    order_id: NotRequired[OptionalIdentifier]
    revenue: NotRequired[Money | None]
    search_query: NotRequired[Annotated[str, Field(max_length=512, pattern=_NO_NUL)]]
    properties: NotRequired[dict[str, Any]]


_EVENT_ADAPTER = TypeAdapter(EventSchema)
# The compiled validator itself: TypeAdapter.validate_python adds Python-level work per call.
_validate_event = _EVENT_ADAPTER.validator.validate_python

# A normalized row has every Event field; optional ones default like the model's columns.
ROW_DEFAULTS: dict[str, Any] = {
    "page_url": "",
    "referrer": "",
    "product_id": "",
    "category": "",
    "price": None,
    "quantity": None,
    "currency": "",
    "order_id": "",
    "revenue": None,
    "search_query": "",
    "properties": {},
}

# Fields each event type cannot do without, beyond the common required ones.
REQUIRED_BY_TYPE: dict[str, tuple[str, ...]] = {
    "product_view": ("product_id",),
    "search": ("search_query",),
    "add_to_cart": ("product_id", "quantity"),
    "remove_from_cart": ("product_id", "quantity"),
    "purchase": ("order_id", "revenue"),
}
POSITIVE_QUANTITY_TYPES = frozenset({"add_to_cart", "remove_from_cart"})


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


@dataclass(slots=True)
class SchemaResult:
    """Outcome of the schema layer: a normalized row (dict of model fields) or the errors."""

    row: dict[str, Any] | None
    errors: list[FieldError] = field(default_factory=list)


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


def _errors_from_pydantic(exc: ValidationError) -> list[FieldError]:
    errors = []
    details = exc.errors(include_url=False, include_input=False, include_context=False)
    for error in details[:MAX_ERRORS_PER_EVENT]:
        location = ".".join(text_safe(part) for part in error["loc"]) or "event"
        rule = _PYDANTIC_RULE_NAMES.get(error["type"], error["type"])
        if rule == "no_nul_bytes":
            message = _PATTERN_MESSAGE
        else:
            message = text_safe(error["msg"].removeprefix("Value error, "), 300)
        errors.append(FieldError(field=location, rule=rule, message=message))
    if len(details) > MAX_ERRORS_PER_EVENT:
        more = len(details) - MAX_ERRORS_PER_EVENT
        errors.append(FieldError("event", "max_errors", f"and {more} more errors not listed"))
    return errors


def _properties_shape_error(properties: dict[str, Any]) -> FieldError | None:
    """Depth and finiteness, walked iteratively (a recursive walk could itself overflow)."""
    stack: list[tuple[Any, int]] = [(properties, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > PROPERTIES_MAX_DEPTH:
            return FieldError(
                "properties", "max_depth", f"may nest at most {PROPERTIES_MAX_DEPTH} levels deep"
            )
        for item in container.values() if isinstance(container, dict) else container:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
            elif isinstance(item, float) and not -_BIG < item < _BIG:
                if not math.isfinite(item):
                    return FieldError("properties", "finite_number", "numbers must be finite")
                # Most likely an integer beyond 64 bits that the JSON parser had to round.
                return FieldError("properties", "range", "numbers must be within ±2^64")
    return None


def _properties_errors(properties: dict[str, Any]) -> list[FieldError]:
    if len(properties) > PROPERTIES_MAX_KEYS:
        return [
            FieldError("properties", "max_keys", f"at most {PROPERTIES_MAX_KEYS} keys are allowed")
        ]
    shape_error = _properties_shape_error(properties)
    if shape_error:
        return [shape_error]
    encoded = orjson.dumps(properties)  # encodability was checked on the whole payload
    if len(encoded) > PROPERTIES_MAX_BYTES:
        return [
            FieldError(
                "properties", "max_size", f"must serialize to at most {PROPERTIES_MAX_BYTES} bytes"
            )
        ]
    if b"\\u0000" in encoded:
        return [FieldError("properties", "no_nul_bytes", "strings may not contain NUL bytes")]
    return []


def _unencodable_errors(payload: Any) -> list[FieldError]:
    """Why a payload cannot be stored as JSON: lone surrogates, integers beyond 64 bits, or
    nesting deeper than any event may have. Walked iteratively, reported per field."""
    errors: list[FieldError] = []
    stack: list[tuple[Any, str, int]] = [(payload, "", 0)]
    while stack and len(errors) < MAX_ERRORS_PER_EVENT:
        value, path, depth = stack.pop()
        if depth > 2 * PROPERTIES_MAX_DEPTH:
            errors.append(FieldError(path or "event", "max_depth", "is nested far too deeply"))
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                key_text = text_safe(key)
                if key_text != key:
                    errors.append(
                        FieldError(f"{path}.{key_text}".lstrip("."), "valid_unicode", _BAD_TEXT)
                    )
                stack.append((item, f"{path}.{key_text}".lstrip("."), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}.{index}", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                errors.append(FieldError(path or "event", "valid_unicode", _BAD_TEXT))
        elif isinstance(value, int) and not -(2**63) <= value < 2**64:
            errors.append(FieldError(path or "event", "range", "number is too large"))
    return errors or [FieldError("event", "json_value", "cannot be stored as JSON")]


_BAD_TEXT = "must be valid Unicode text (no unpaired surrogates)"


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Aware datetimes are converted to UTC; naive ones are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def validate_event_schema(
    payload: Any, *, received_at: dt.datetime, max_future_skew: dt.timedelta
) -> SchemaResult:
    """Check one raw event against the wire schema and return a row ready to store.

    Applies clock-skew correction when `sent_at` is given (timestamp = received_at - (sent_at -
    timestamp), as Segment and RudderStack do; the raw value is kept as client_timestamp) and
    refuses timestamps more than `max_future_skew` in the future.
    """
    if not isinstance(payload, dict):
        return SchemaResult(
            None, [FieldError("event", "object", "each event must be a JSON object")]
        )
    try:
        orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return SchemaResult(None, _unencodable_errors(payload))
    try:
        event = _validate_event(payload)
    except ValidationError as exc:
        return SchemaResult(None, _errors_from_pydantic(exc))

    row = ROW_DEFAULTS | event
    if "properties" not in event:
        row["properties"] = {}  # never the shared default: callers may add to it
    event_type = row["event_type"]
    errors: list[FieldError] = []
    for required in REQUIRED_BY_TYPE.get(event_type, ()):
        value = row[required]
        if value is None or value == "":
            errors.append(FieldError(required, "required", f"is required for {event_type} events"))
    quantity = row["quantity"]
    if event_type in POSITIVE_QUANTITY_TYPES and quantity is not None and quantity <= 0:
        errors.append(FieldError("quantity", "range", "must be greater than 0"))
    if row["properties"]:
        errors.extend(_properties_errors(row["properties"]))

    sent_at = row.pop("sent_at", None)
    date_errors = [
        FieldError(name, "iso8601", TIMESTAMP_RANGE_MESSAGE)
        for name, value in (("timestamp", row["timestamp"]), ("sent_at", sent_at))
        if value is not None and not TIMESTAMP_MIN_YEAR <= value.year <= TIMESTAMP_MAX_YEAR
    ]
    if date_errors:
        return SchemaResult(None, errors + date_errors)
    client_timestamp = _as_utc(row["timestamp"])
    timestamp = client_timestamp
    if sent_at is not None:
        try:
            timestamp = received_at - (_as_utc(sent_at) - client_timestamp)
        except OverflowError:
            # Each date is in range, but the correction moves the time out of the calendar:
            # far ahead is refused as in the future, far behind by this runtime rule.
            if client_timestamp > _as_utc(sent_at):
                timestamp = dt.datetime.max.replace(tzinfo=dt.UTC)
            else:
                message = "is out of the supported date range after the sent_at correction"
                return SchemaResult(None, [*errors, FieldError("timestamp", "date_range", message)])
    if timestamp - received_at > max_future_skew:
        errors.append(
            FieldError(
                "timestamp",
                "not_in_future",
                f"is more than {int(max_future_skew.total_seconds())} s in the future",
            )
        )
    if errors:
        return SchemaResult(None, errors)
    row["timestamp"] = timestamp
    row["client_timestamp"] = client_timestamp
    row["received_at"] = received_at
    return SchemaResult(row, [])
