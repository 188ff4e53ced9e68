"""The schema layer of event validation: types, formats, enums, lengths, per-type requirements.

It is a pydantic v2 TypedDict schema compiled once at import (a TypeAdapter), so validating an
event costs a few microseconds and yields a plain dict, not a model to dump again.
`validate_event_schema` is the one entry point; the quality app layers stored rules on top of it.

Every error names a field and a rule (events.schema_errors). Error text never echoes raw input
unescaped: field names taken from the payload (unknown keys) are escaped and cut, so NUL bytes,
lone surrogates and 100 KB keys can neither break the JSON response nor the database row that
keeps the reasons.
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

from events.schema_errors import (
    FIELD_NAME_MAX_CHARS,
    IDENTITY_MISSING,
    MAX_ERRORS_PER_EVENT,
    NAIVE_TIMESTAMP_WARNING,
    FieldError,
    errors_from_pydantic,
    text_safe,
)

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
EVENT_NAME_MAX_CHARS = 128
# ISO 3166 user-assigned code for "unknown or unspecified country"; dashboards show "Unknown".
UNKNOWN_COUNTRY = "ZZ"
# The fields the server fills in when the client leaves them out (events.derivation).
DERIVABLE_FIELDS = ("session_id", "device_type", "country")

PROPERTIES_MAX_BYTES = 8192
PROPERTIES_MAX_DEPTH = 5
PROPERTIES_MAX_KEYS = 100
MAX_MONEY = Decimal("9999999999.99")
MAX_QUANTITY = 100_000
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
# Property values with nothing to check (exact types, so that no subclass slips by).
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})
_STORABLE_YEARS = range(TIMESTAMP_MIN_YEAR, TIMESTAMP_MAX_YEAR + 1)
_BIG = float(2**64)  # beyond this a JSON number in properties lost digits


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
# An event name is printable: no control characters (C0, DEL, C1), no leading or trailing space.
PRINTABLE_NAME = r"^[^\x00-\x20\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f])?$"
EventName = Annotated[
    str, Field(min_length=1, max_length=EVENT_NAME_MAX_CHARS, pattern=PRINTABLE_NAME)
]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=_NO_NUL)]
OptionalIdentifier = Annotated[str, Field(max_length=128, pattern=_NO_NUL)]
Url = Annotated[str, Field(max_length=2048, pattern=_NO_NUL)]
Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False, decimal_places=2)]
Quantity = Annotated[int, Field(strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
DeviceType = Literal["desktop", "mobile", "tablet", "other"]


Country = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country_is_iso)]
Currency = Annotated[str, Field(max_length=3), AfterValidator(_currency_is_iso)]
SearchQuery = Annotated[str, Field(max_length=512, pattern=_NO_NUL)]


@with_config(ConfigDict(extra="forbid"))
class EventSchema(TypedDict):
    """Wire format of one event (ADR 0014: the open event model). `null` in any optional
    field means absent; session_id, device_type and country are derived when absent."""

    event_id: UUID
    event_type: EventName
    timestamp: dt.datetime
    sent_at: NotRequired[dt.datetime | None]
    user_id: NotRequired[OptionalIdentifier | None]
    anonymous_id: NotRequired[OptionalIdentifier | None]
    session_id: NotRequired[OptionalIdentifier | None]
    device_type: NotRequired[DeviceType | None]
    country: NotRequired[Country | None]
    page_url: NotRequired[Url | None]
    referrer: NotRequired[Url | None]
    product_id: NotRequired[OptionalIdentifier | None]
    category: NotRequired[OptionalIdentifier | None]
    price: NotRequired[Money | None]
    quantity: NotRequired[Quantity | None]
    currency: NotRequired[Currency | None]
    order_id: NotRequired[OptionalIdentifier | None]
    revenue: NotRequired[Money | None]
    search_query: NotRequired[SearchQuery | None]
    properties: NotRequired[dict[str, Any] | None]


__all__ = ["FIELD_NAME_MAX_CHARS", "MAX_ERRORS_PER_EVENT", "FieldError", "text_safe"]

_EVENT_ADAPTER = TypeAdapter(EventSchema)
# The compiled validator itself: TypeAdapter.validate_python adds Python-level work per call.
_validate_event = _EVENT_ADAPTER.validator.validate_python

# A normalized row has every Event field; optional ones default like the model's columns.
ROW_DEFAULTS: dict[str, Any] = {
    "user_id": "",
    "anonymous_id": "",
    # Empty: to be derived (events.derivation) before the row is stored.
    "session_id": "",
    "device_type": "",
    "country": "",
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


@dataclass(slots=True)
class SchemaResult:
    """Outcome of the schema layer: a normalized row (dict of model fields) or the errors;
    warnings (such as a timestamp without an offset) do not refuse the event."""

    row: dict[str, Any] | None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)


def _properties_shape_error(properties: dict[str, Any]) -> FieldError | None:
    """Depth and finiteness, walked iteratively (a recursive walk could itself overflow)."""
    if _PLAIN_TYPES.issuperset(map(type, properties.values())):
        return None  # flat, without floats (most events): nothing to walk, looked at in C
    stack: list[tuple[Any, int]] = [(properties, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > PROPERTIES_MAX_DEPTH:
            return FieldError(
                "properties", "max_depth", f"may nest at most {PROPERTIES_MAX_DEPTH} levels deep"
            )
        for item in container.values() if isinstance(container, dict) else container:
            kind = type(item)
            if kind is str or kind is int or kind is bool or item is None:
                continue  # most values: nothing to check (exact types, so no subclass slips by)
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
            elif isinstance(item, float) and not -_BIG < item < _BIG:
                if not math.isfinite(item):
                    return FieldError("properties", "finite_number", "numbers must be finite")
                # Most likely an integer beyond 64 bits that the JSON parser had to round.
                return FieldError("properties", "range", "numbers must be within ±2^64")
    return None


def has_escaped_nul(encoded: bytes) -> bool:
    """Whether orjson's JSON holds a NUL (as `\\u0000`). Most JSON has no escape at all, and
    `find` of one byte (memchr) rules that out in a quarter of the time of the `in` search."""
    return encoded.find(b"\\") >= 0 and b"\\u0000" in encoded


def _properties_errors(properties: dict[str, Any], payload_json: bytes) -> list[FieldError]:
    """`payload_json`: the whole event as JSON. The properties' own JSON is part of it, so
    when the event is within the size limit and holds no escaped NUL, so are they (the common
    case: no second encoding)."""
    if len(properties) > PROPERTIES_MAX_KEYS:
        return [
            FieldError("properties", "max_keys", f"at most {PROPERTIES_MAX_KEYS} keys are allowed")
        ]
    shape_error = _properties_shape_error(properties)
    if shape_error:
        return [shape_error]
    if len(payload_json) <= PROPERTIES_MAX_BYTES and not has_escaped_nul(payload_json):
        return []
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
    payload: Any,
    *,
    received_at: dt.datetime,
    max_future_skew: dt.timedelta,
    payload_json: bytes | None = None,
) -> SchemaResult:
    """Check one raw event against the wire schema and return a row ready to store.

    Applies clock-skew correction when `sent_at` is given (timestamp = received_at - (sent_at -
    timestamp), as Segment and RudderStack do; the raw value is kept as client_timestamp) and
    refuses timestamps more than `max_future_skew` in the future. `payload_json`: the payload
    as orjson writes it, when the caller has it already (ingestion, for the size limit).
    """
    if not isinstance(payload, dict):
        return SchemaResult(
            None, [FieldError("event", "object", "each event must be a JSON object")]
        )
    if payload_json is None:
        try:
            payload_json = orjson.dumps(payload)
        except orjson.JSONEncodeError:
            return SchemaResult(None, _unencodable_errors(payload))
    try:
        event = _validate_event(payload)
    except ValidationError as exc:
        return SchemaResult(None, errors_from_pydantic(exc))

    row = ROW_DEFAULTS | event
    # Null means absent. The event has a None where the payload has one; the payload's values
    # compare with None in C (the event's UUID would call uuid.py's __eq__).
    if None in payload.values():
        for name, value in event.items():
            if value is None and name != "sent_at":
                row[name] = ROW_DEFAULTS[name]
    if not row["properties"]:
        row["properties"] = {}  # never the shared default: callers may add to it
    event_type = row["event_type"]
    errors: list[FieldError] = []
    if not row["user_id"] and not row["anonymous_id"]:
        errors.append(IDENTITY_MISSING)
    for required in REQUIRED_BY_TYPE.get(event_type, ()):
        value = row[required]
        if value is None or value == "":
            errors.append(FieldError(required, "required", f"is required for {event_type} events"))
    quantity = row["quantity"]
    if event_type in POSITIVE_QUANTITY_TYPES and quantity is not None and quantity <= 0:
        errors.append(FieldError("quantity", "range", "must be greater than 0"))
    if row["properties"]:
        errors.extend(_properties_errors(row["properties"], payload_json))

    sent_at = row.pop("sent_at", None)
    if row["timestamp"].year not in _STORABLE_YEARS or (
        sent_at is not None and sent_at.year not in _STORABLE_YEARS
    ):
        date_errors = [
            FieldError(name, "iso8601", TIMESTAMP_RANGE_MESSAGE)
            for name, value in (("timestamp", row["timestamp"]), ("sent_at", sent_at))
            if value is not None and value.year not in _STORABLE_YEARS
        ]
        return SchemaResult(None, errors + date_errors)
    warnings = [NAIVE_TIMESTAMP_WARNING] if row["timestamp"].tzinfo is None else []
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
    return SchemaResult(row, [], warnings)
