"""The schema layer of event validation: types, formats, enums, lengths, per-type requirements.

It is a pydantic v2 model compiled once at import, so validating an event costs microseconds.
`validate_event_schema` is the one entry point; the quality app layers stored rules on top of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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

# Strings may not contain NUL (PostgreSQL cannot store it); surrogates fail pydantic's str check.
_NO_NUL = r"^[^\x00]*$"
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=_NO_NUL)]
OptionalIdentifier = Annotated[str, Field(max_length=128, pattern=_NO_NUL)]
Url = Annotated[str, Field(max_length=2048, pattern=_NO_NUL)]
Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False, decimal_places=2)]

# Fields each event type cannot do without, beyond the common required ones.
REQUIRED_BY_TYPE: dict[str, tuple[str, ...]] = {
    "product_view": ("product_id",),
    "search": ("search_query",),
    "add_to_cart": ("product_id", "quantity"),
    "remove_from_cart": ("product_id", "quantity"),
    "purchase": ("order_id", "revenue"),
}


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


class EventSchema(BaseModel):
    """Wire format of one event, as in the product's original README."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)

    event_id: UUID
    event_type: Literal[
        "page_view",
        "product_view",
        "search",
        "add_to_cart",
        "remove_from_cart",
        "checkout_start",
        "purchase",
    ]
    timestamp: dt.datetime
    sent_at: dt.datetime | None = None
    user_id: Identifier
    session_id: Identifier
    device_type: Literal["desktop", "mobile", "tablet", "other"]
    country: Annotated[str, Field(min_length=2, max_length=2)]
    page_url: Url = ""
    referrer: Url = ""
    product_id: OptionalIdentifier = ""
    category: OptionalIdentifier = ""
    price: Money | None = None
    quantity: Annotated[int, Field(strict=True, ge=-100_000, le=100_000)] | None = None
    currency: Annotated[str, Field(max_length=3)] = ""
    order_id: OptionalIdentifier = ""
    revenue: Money | None = None
    search_query: Annotated[str, Field(max_length=512, pattern=_NO_NUL)] = ""
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("country")
    @classmethod
    def _country_is_iso(cls, value: str) -> str:
        if value not in COUNTRY_CODES:
            raise ValueError("must be an ISO 3166-1 alpha-2 code in upper case, such as US or DE")
        return value

    @field_validator("currency")
    @classmethod
    def _currency_is_iso(cls, value: str) -> str:
        if value and value not in CURRENCY_CODES:
            raise ValueError("must be an ISO 4217 code in upper case, such as USD or EUR")
        return value


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
    "datetime_from_date_parsing": "iso8601",
    "datetime_parsing": "iso8601",
    "datetime_type": "iso8601",
    "greater_than_equal": "range",
    "less_than_equal": "range",
    "decimal_max_places": "decimal_places",
    "finite_number": "finite_number",
    "value_error": "format",
    "int_type": "integer",
    "int_from_float": "integer",
    "int_parsing": "integer",
    "decimal_parsing": "number",
    "decimal_type": "number",
    "string_type": "string",
    "dict_type": "object",
}


def _errors_from_pydantic(exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"]) or "event"
        rule = _PYDANTIC_RULE_NAMES.get(error["type"], error["type"])
        message = error["msg"].removeprefix("Value error, ")
        errors.append(FieldError(field=location, rule=rule, message=message))
    return errors


def _json_depth(value: Any, depth: int = 1) -> int:
    if isinstance(value, dict):
        return max((_json_depth(item, depth + 1) for item in value.values()), default=depth)
    if isinstance(value, list):
        return max((_json_depth(item, depth + 1) for item in value), default=depth)
    return depth - 1


def _properties_errors(properties: dict[str, Any]) -> list[FieldError]:
    if not properties:
        return []
    if len(properties) > PROPERTIES_MAX_KEYS:
        return [
            FieldError("properties", "max_keys", f"at most {PROPERTIES_MAX_KEYS} keys are allowed")
        ]
    if _json_depth(properties) > PROPERTIES_MAX_DEPTH:
        return [
            FieldError(
                "properties", "max_depth", f"may nest at most {PROPERTIES_MAX_DEPTH} levels deep"
            )
        ]
    try:
        encoded = orjson.dumps(properties)
    except (TypeError, orjson.JSONEncodeError) as exc:
        return [FieldError("properties", "json_value", f"cannot be stored as JSON: {exc}")]
    if len(encoded) > PROPERTIES_MAX_BYTES:
        return [
            FieldError(
                "properties", "max_size", f"must serialize to at most {PROPERTIES_MAX_BYTES} bytes"
            )
        ]
    if b"\\u0000" in encoded:
        return [FieldError("properties", "no_nul_bytes", "strings may not contain NUL bytes")]
    return []


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
    timestamp), as Segment and RudderStack do) and refuses timestamps too far in the future.
    """
    if not isinstance(payload, dict):
        return SchemaResult(
            None, [FieldError("event", "object", "each event must be a JSON object")]
        )
    try:
        event = EventSchema.model_validate(payload)
    except ValidationError as exc:
        return SchemaResult(None, _errors_from_pydantic(exc))

    errors: list[FieldError] = []
    for required in REQUIRED_BY_TYPE.get(event.event_type, ()):
        value = getattr(event, required)
        if value is None or value == "":
            errors.append(
                FieldError(required, "required", f"is required for {event.event_type} events")
            )
    if event.event_type in ("add_to_cart", "remove_from_cart") and (
        event.quantity is not None and event.quantity <= 0
    ):
        errors.append(FieldError("quantity", "range", "must be greater than 0"))
    errors.extend(_properties_errors(event.properties))

    try:
        client_timestamp = _as_utc(event.timestamp)
        timestamp = client_timestamp
        if event.sent_at is not None:
            timestamp = received_at - (_as_utc(event.sent_at) - client_timestamp)
    except OverflowError:
        errors.append(FieldError("timestamp", "iso8601", "is out of the supported date range"))
        return SchemaResult(None, errors)
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

    row = event.model_dump(exclude={"sent_at"})
    row["timestamp"] = timestamp
    row["client_timestamp"] = client_timestamp
    row["received_at"] = received_at
    return SchemaResult(row, [])
