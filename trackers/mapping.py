"""What the PostHog and Snowplow translations hand on: one mapped event (our wire format) with
the request details the ingest service derives fields from, or an identity call. Pure data."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

# The seven e-commerce types drive the funnel; PostHog documents Segment's e-commerce names
# for them (posthog.com/docs/data/event-spec/ecommerce-events), so both protocols share this.
ECOMMERCE_NAMES = {
    "Products Searched": "search",
    "Product Viewed": "product_view",
    "Product Added": "add_to_cart",
    "Product Removed": "remove_from_cart",
    "Checkout Started": "checkout_start",
    "Order Completed": "purchase",
}
DEVICE_TYPES = ("desktop", "mobile", "tablet", "other")


@dataclass(slots=True)
class MappedEvent:
    """One foreign message as our event payload. `foreign_id` is the sender's own id (the
    dedupe key): a UUID is used as is, anything else becomes a deterministic UUID per source.
    `user_agent` and `ip` override the request's own when the message carries them."""

    payload: dict[str, Any]
    original: Any
    foreign_id: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    # (field, rule, message) found while translating (e.g. an undecodable context): the event
    # is quarantined with them, not stored.
    errors: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class IdentityCall:
    """An identify (traits on a person) or an alias (an anonymous id linked to a user id)."""

    kind: str  # "identify" | "alias"
    user_id: str
    anonymous_id: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    original: Any = None


# Identity calls skip the event validator: their own bounds, as an event's would be (the
# person records' columns: PersonLink.linked_id, Person.traits).
IDENTITY_ID_MAX_CHARS = 128
IDENTITY_TRAITS_MAX_BYTES = 8192


def identity_refusal(ids: dict[str, str | None], traits: Any) -> tuple[str, str, str] | None:
    """(field, rule, message) when an identity call's ids (by the field they came from) or
    traits cannot be stored on the person records; None when they can. A refused call is
    quarantined with its original, instead of failing the request at the database."""
    for field_name, value in ids.items():
        if value is None:
            continue
        if len(value) > IDENTITY_ID_MAX_CHARS:
            return field_name, "max_length", f"must be at most {IDENTITY_ID_MAX_CHARS} chars"
        if "\x00" in value:
            return field_name, "no_nul_bytes", "must not contain NUL characters"
        if not _utf8_storable(value):
            return field_name, "valid_unicode", "must be valid Unicode text"
    try:
        written = orjson.dumps(traits)
    except (TypeError, orjson.JSONEncodeError):
        return "traits", "valid_unicode", "traits must be storable JSON"
    if len(written) > IDENTITY_TRAITS_MAX_BYTES or b"\\u0000" in written:
        limit = IDENTITY_TRAITS_MAX_BYTES
        return "traits", "max_size", f"traits are at most {limit} bytes of JSON, without NUL"
    return None


def _utf8_storable(text: str) -> bool:
    """No lone surrogate (which PostgreSQL's UTF-8 text cannot hold)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_or_none(value: Any) -> str | None:
    """A field's text: strings as sent, numbers as their text; anything else (null, objects)
    is absent, so a wrongly typed optional field does not refuse a whole event."""
    if type(value) is str:  # the common case first: this runs a dozen times per message
        return value or None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def currency_or_none(value: Any) -> str | None:
    """A currency code in upper case, as our schema and Segment's mapping take it: SDKs'
    e-commerce calls are often written with "usd"."""
    text = text_or_none(value)
    return None if text is None else text.upper()


def money_or_none(value: Any) -> Any:
    """Money as a JSON number rounded to cents (our schema takes two decimal places), or the
    value itself when it is not a number, so the schema layer names the field and rule."""
    if isinstance(value, bool) or value is None:
        return value
    if is_whole_cents(value):
        return float(value)  # what the rounding below gives, without Decimal's cost
    if isinstance(value, int | float | str):
        try:
            return float(Decimal(str(value)).quantize(_CENT))
        except (InvalidOperation, ValueError):
            return value
    return value


_CENT = Decimal("0.01")
_CENTS_EXACT = 1e9  # below it a double is within 1e-6 of the cents it stands for


def is_whole_cents(value: Any) -> bool:
    """A number that is already in whole cents (most prices): rounding it to cents through
    Decimal gives it back, and formatting it with two decimals gives those cents."""
    kind = type(value)
    if kind is float:
        return -_CENTS_EXACT < value < _CENTS_EXACT and round(value, 2) == value
    return kind is int and -_CENTS_EXACT < value < _CENTS_EXACT


def quantity_or_none(value: Any) -> Any:
    """Whole quantities sent as floats (1.0) or text ("2") become integers; others stay."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def device_type_of(value: Any) -> str | None:
    """A client's device class in our four values; None (derive from the User-Agent) when
    the client names none."""
    text = value if type(value) is str else text_or_none(value)
    if text is None:
        return None
    if len(text) > 32:  # not a device class's name: not memoised
        return _device_type_of_text.__wrapped__(text)
    return _device_type_of_text(text)


@functools.lru_cache(maxsize=256)
def _device_type_of_text(text: str) -> str | None:
    """Memoised (short texts only): clients name their device class in a few spellings."""
    if not text:
        return None
    lowered = text.lower()
    return lowered if lowered in DEVICE_TYPES else "other"
