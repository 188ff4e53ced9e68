"""Segment's message format (RudderStack speaks it too) into our wire format: pure functions.

One message in, one `Translated` (an event for track, page, screen and group) or one
`IdentityCall` (identify, alias) out; nothing here touches the database, so every mapping is
unit-tested on plain dicts (tests/unit/test_segment_mapping.py). ADR 0016 gives the reasons:
- `messageId` becomes our event_id through `trackers.common.event_id_for` (re-sends dedupe);
- the client's event time is `originalTimestamp`, else `timestamp`; `sentAt` (the message's, else
  the batch's) goes to `sent_at`, so the ingestion service corrects clock skew as Segment does;
- Segment's e-commerce spec v2 names become our seven types with their fields; any other name
  is a custom event under its own name; page and screen are page views;
- what has no column of ours (campaign, locale, the e-commerce `products[]`, other properties)
  stays in `properties`; the message itself is kept whole as the original.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import pycountry

from trackers.common import Translated, event_id_for, untranslatable

SOURCE = "segment"
MESSAGE_MAX_BYTES = 32 * 1024
BATCH_MAX_BYTES = 500 * 1024
EVENT_CALLS = frozenset({"track", "page", "screen", "group"})
IDENTITY_CALLS = frozenset({"identify", "alias"})
CALLS = EVENT_CALLS | IDENTITY_CALLS
# Identity calls skip the event validator: their own bounds (as an event's would be).
IDENTITY_ID_MAX_CHARS = 128
IDENTITY_TRAITS_MAX_BYTES = 8192
IDENTITY_MIN_YEAR, IDENTITY_MAX_YEAR = 2, 9998
IDENTITY_MAX_FUTURE = dt.timedelta(minutes=5)

# Segment e-commerce spec v2 event names -> our types.
ECOMMERCE_TYPES = {
    "Products Searched": "search",
    "Product Viewed": "product_view",
    "Product Added": "add_to_cart",
    "Product Removed": "remove_from_cart",
    "Checkout Started": "checkout_start",
    "Order Completed": "purchase",
}
# Which spec property feeds which column; the first present wins.
_PRODUCT_ID = ("product_id", "sku", "id")
_REVENUE = ("revenue", "total", "value")
_CAMPAIGN = {"name": "utm_campaign", "source": "utm_source", "medium": "utm_medium"}
_CAMPAIGN |= {"term": "utm_term", "content": "utm_content"}
# Segment's context.device.type -> our device types (the User-Agent decides otherwise).
_DEVICE_TYPES = {
    "ios": "mobile",
    "android": "mobile",
    "mobile": "mobile",
    "tablet": "tablet",
    "ipados": "tablet",
    "desktop": "desktop",
    "macos": "desktop",
    "windows": "desktop",
    "linux": "desktop",
}


# context.location.country is a name in Segment's examples ("United States") or a code.
_COUNTRY_BY_NAME = {country.name.lower(): country.alpha_2 for country in pycountry.countries}
_COUNTRY_BY_NAME |= {
    name.lower(): country.alpha_2
    for country in pycountry.countries
    for name in (getattr(country, "common_name", None), getattr(country, "official_name", None))
    if name
}
_COUNTRY_CODES = frozenset(_COUNTRY_BY_NAME.values())


@dataclass(frozen=True, slots=True)
class IdentityCall:
    """An identify (traits for a person) or an alias (two ids of one person): not an event."""

    kind: str
    original: Any
    user_id: str
    anonymous_id: str = ""
    previous_id: str = ""
    traits: dict[str, Any] | None = None
    timestamp: dt.datetime | None = None


def _text(value: Any) -> str:
    """Ids may come as whole numbers; anything else that is not text is absent."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


# The fields a mapping reads, by the JSON type they must have when present: a message that
# breaks one is quarantined naming it (a wrong type is not silently dropped).
_OBJECT_FIELDS = ("properties", "context", "traits")
_TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")
_ID_FIELDS = ("userId", "anonymousId", "previousId", "groupId")


def _shape_error(message: dict[str, Any]) -> Translated | None:
    for name in _OBJECT_FIELDS:
        value = message.get(name)
        if value is not None and not isinstance(value, dict):
            return untranslatable(message, name, "object", f"{name} must be a JSON object")
    for name in _TIME_FIELDS:
        value = message.get(name)
        if value is not None and not isinstance(value, str):
            return untranslatable(message, name, "iso8601", f"{name} must be an ISO-8601 string")
    for name in _ID_FIELDS:
        value = message.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            return untranslatable(message, name, "string", f"{name} must be a string")
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(data: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = data.get(name)
        if value is not None and value != "":
            return value
    return None


def _money(value: Any) -> Any:
    """Money as text with at most two decimals; anything else is left for validation to name."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return value
    if not amount.is_finite():
        return value
    return str(amount.quantize(Decimal("0.01")))


def _quantity(value: Any) -> Any:
    """A whole float (2.0) is the integer it means; other values are validation's to judge."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def message_size_error(message: Any) -> Translated | None:
    """Segment's limit of 32 KB per message, on the message as sent."""
    try:
        size = len(orjson.dumps(message))
    except (TypeError, orjson.JSONEncodeError):
        return None  # the schema layer names what cannot be encoded
    if size <= MESSAGE_MAX_BYTES:
        return None
    return untranslatable(
        message, "message", "max_size", f"must be at most {MESSAGE_MAX_BYTES} bytes of JSON"
    )


def _times(message: dict[str, Any], batch_sent_at: Any, received_at: dt.datetime) -> dict:
    timestamp = _first(message, ("originalTimestamp", "timestamp"))
    sent_at = _first(message, ("sentAt",)) or batch_sent_at
    if timestamp is None:
        # No event time: it happened when it was sent (corrected), or when it arrived.
        timestamp = sent_at or received_at.isoformat()
    times = {"timestamp": timestamp}
    if sent_at is not None:
        times["sent_at"] = sent_at
    return times


def _context_fields(context: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """Columns and properties from context: page, device, campaign, locale, session."""
    fields: dict[str, Any] = {}
    page = _dict(context.get("page"))
    url = _first(properties, ("url",)) or _first(page, ("url",))
    if url is not None:
        fields["page_url"] = url
    referrer = _first(properties, ("referrer",)) or _first(page, ("referrer",))
    if referrer is not None:
        fields["referrer"] = referrer
    device = _DEVICE_TYPES.get(_text(_dict(context.get("device")).get("type")).lower())
    if device is not None:
        fields["device_type"] = device
    session = _text(_first(context, ("sessionId", "session_id")))
    if session:
        fields["session_id"] = session
    country = _country(_dict(context.get("location")).get("country"))
    if country:
        fields["country"] = country
    return fields


def _country(value: Any) -> str:
    """An ISO code from context.location.country (a code or a country's name); "" when it is
    neither, so the country is derived from the IP instead."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if text.upper() in _COUNTRY_CODES:
        return text.upper()
    return _COUNTRY_BY_NAME.get(text.lower(), "")


def _context_properties(context: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, key in _CAMPAIGN.items():
        value = _dict(context.get("campaign")).get(name)
        if value is not None:
            kept[key] = value
    locale = context.get("locale")
    if locale is not None:
        kept["locale"] = locale
    return kept


def _ecommerce_fields(event_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Our columns for one of the seven types from the spec's properties."""
    fields: dict[str, Any] = {}
    if event_type == "search":
        query = _first(properties, ("query",))
        if query is not None:
            fields["search_query"] = query
        return fields
    if event_type in ("product_view", "add_to_cart", "remove_from_cart"):
        product_id = _first(properties, _PRODUCT_ID)
        if product_id is not None:
            fields["product_id"] = _text(product_id) or product_id
        for name in ("category",):
            if properties.get(name) is not None:
                fields[name] = properties[name]
        if properties.get("price") is not None:
            fields["price"] = _money(properties["price"])
        if event_type != "product_view":
            quantity = properties.get("quantity")
            fields["quantity"] = 1 if quantity is None else _quantity(quantity)
    else:  # checkout_start, purchase
        order_id = _first(properties, ("order_id", "checkout_id"))
        if order_id is not None:
            fields["order_id"] = _text(order_id) or order_id
        revenue = _first(properties, _REVENUE)
        if revenue is not None:
            fields["revenue"] = _money(revenue)
    currency = properties.get("currency")
    if isinstance(currency, str) and currency:
        fields["currency"] = currency.upper()
    return fields


def _event_name(call: str, message: dict[str, Any]) -> Any:
    if call in ("page", "screen"):
        return "page_view"
    if call == "group":
        return "group"
    name = message.get("event")
    return ECOMMERCE_TYPES.get(name, name) if isinstance(name, str) else name


def _ids(message: dict[str, Any]) -> dict[str, str]:
    ids = {}
    user_id = _text(message.get("userId"))
    if user_id:
        ids["user_id"] = user_id
    anonymous_id = _text(message.get("anonymousId"))
    if anonymous_id:
        ids["anonymous_id"] = anonymous_id
    return ids


def event_translate(
    message: Any, *, call: str, key_id: int | None, batch_sent_at: Any, received_at: dt.datetime
) -> Translated:
    """A track, page, screen or group message as one of our events."""
    properties = dict(_dict(message.get("properties")))
    if call == "group":
        group_id = _text(message.get("groupId"))
        if not group_id:
            return untranslatable(message, "groupId", "required", "a group call needs groupId")
        properties = {"group_id": group_id, **_dict(message.get("traits"))}
    elif call in ("page", "screen") and message.get("name") is not None:
        properties.setdefault("name", message.get("name"))
    context = _dict(message.get("context"))
    event_type = _event_name(call, message)
    if not isinstance(event_type, str) or not event_type.strip():
        return untranslatable(message, "event", "required", "a track call needs an event name")
    ids = _ids(message)
    if not ids:
        return untranslatable(message, "userId", "required", "userId or anonymousId is required")
    payload: dict[str, Any] = {
        "event_id": event_id_for(
            source=SOURCE, key_id=key_id, message_id=message.get("messageId"), message=message
        ),
        "event_type": event_type,
        **ids,
        **_times(message, batch_sent_at, received_at),
        **_context_fields(context, properties),
    }
    if event_type in ECOMMERCE_TYPES.values():
        payload |= _ecommerce_fields(event_type, properties)
    kept = {**properties, **_context_properties(context)}
    for name in ("url", "referrer"):
        kept.pop(name, None)
    if kept:
        payload["properties"] = kept
    return Translated(
        original=message,
        payload=payload,
        user_agent=_text(context.get("userAgent")),
        ip=_text(context.get("ip")),
    )


def _storable(text: str) -> bool:
    """Text PostgreSQL can store: no NUL, no lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _identity_time(
    message: dict[str, Any], batch_sent_at: Any, received_at: dt.datetime
) -> dt.datetime | str:
    """The call's time, skew-corrected like an event's; an error message when it is unusable."""
    text = _first(message, ("originalTimestamp", "timestamp"))
    sent_text = _first(message, ("sentAt",)) or batch_sent_at
    if text is None:
        return received_at
    try:
        moment = dt.datetime.fromisoformat(text)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        if isinstance(sent_text, str):
            sent = dt.datetime.fromisoformat(sent_text)
            moment = received_at - ((sent if sent.tzinfo else sent.replace(tzinfo=dt.UTC)) - moment)
        moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return "must be an ISO-8601 date-time within the supported years"
    if not IDENTITY_MIN_YEAR <= moment.year <= IDENTITY_MAX_YEAR:
        return "must be an ISO-8601 date-time within the supported years"
    if moment - received_at > IDENTITY_MAX_FUTURE:
        return f"is more than {int(IDENTITY_MAX_FUTURE.total_seconds())} s in the future"
    return moment


def identity_translate(
    message: Any, *, call: str, batch_sent_at: Any, received_at: dt.datetime
) -> IdentityCall | Translated:
    """An identify (user and/or anonymous id with traits) or an alias (previousId -> userId).
    Ids are bounded storable text, traits bounded JSON, the time skew-corrected."""
    ids = {name: _text(message.get(name)) for name in ("userId", "anonymousId", "previousId")}
    for name, value in ids.items():
        if len(value) > IDENTITY_ID_MAX_CHARS or not _storable(value):
            rule = "max_length" if len(value) > IDENTITY_ID_MAX_CHARS else "no_nul_bytes"
            limit = IDENTITY_ID_MAX_CHARS
            return untranslatable(message, name, rule, f"must be at most {limit} storable chars")
    user_id, anonymous_id, previous_id = ids["userId"], ids["anonymousId"], ids["previousId"]
    when = _identity_time(message, batch_sent_at, received_at)
    if isinstance(when, str):
        rule = "not_in_future" if "future" in when else "iso8601"
        return untranslatable(message, "timestamp", rule, when)
    if call == "alias":
        if not user_id or not previous_id:
            return untranslatable(
                message, "previousId", "required", "an alias needs previousId and userId"
            )
        return IdentityCall("alias", message, user_id, previous_id=previous_id, timestamp=when)
    if not user_id and not anonymous_id:
        return untranslatable(message, "userId", "required", "userId or anonymousId is required")
    traits = message.get("traits") or _dict(message.get("context")).get("traits")
    if traits is not None and not isinstance(traits, dict):
        return untranslatable(message, "traits", "object", "traits must be a JSON object")
    try:
        size = len(orjson.dumps(traits or {}))
    except (TypeError, orjson.JSONEncodeError):
        return untranslatable(message, "traits", "valid_unicode", "traits must be storable JSON")
    if size > IDENTITY_TRAITS_MAX_BYTES or "\\u0000" in orjson.dumps(traits or {}).decode():
        limit = IDENTITY_TRAITS_MAX_BYTES
        return untranslatable(message, "traits", "max_size", f"at most {limit} bytes, no NUL")
    return IdentityCall(
        "identify", message, user_id, anonymous_id, traits=traits or {}, timestamp=when
    )


def message_translate(
    message: Any,
    *,
    call: str | None,
    key_id: int | None,
    batch_sent_at: Any = None,
    received_at: dt.datetime,
) -> Translated | IdentityCall:
    """One Segment message; `call` is the path's (/v1/track) or None for a batch item, whose
    own `type` names it."""
    if not isinstance(message, dict):
        return untranslatable(message, "message", "object", "each message must be a JSON object")
    too_large = message_size_error(message)
    if too_large is not None:
        return too_large
    call = call or message.get("type")
    if not isinstance(call, str) or call not in CALLS:
        allowed = ", ".join(sorted(CALLS))
        return untranslatable(message, "type", "allowed_values", f"must be one of {allowed}")
    wrong_type = _shape_error(message)
    if wrong_type is not None:
        return wrong_type
    if call in IDENTITY_CALLS:
        return identity_translate(
            message, call=call, batch_sent_at=batch_sent_at, received_at=received_at
        )
    return event_translate(
        message, call=call, key_id=key_id, batch_sent_at=batch_sent_at, received_at=received_at
    )
