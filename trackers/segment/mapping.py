"""Segment's message format (RudderStack speaks it too) into our wire format: pure functions.

A track, page, screen or group message in (already checked by `messages.message_translate`,
which also sends identify and alias to `identity`), one `Translated` event out; nothing here
touches the database, so every mapping is unit-tested on plain dicts
(tests/unit/test_segment_mapping.py). ADR 0016 gives the reasons:
- `messageId` becomes our event_id through `trackers.event_ids.event_id_for` (re-sends dedupe);
- the client's event time is `originalTimestamp`, else `timestamp`; `sentAt` (the message's, else
  the batch's) goes to `sent_at`, so the ingestion service corrects clock skew as Segment does;
- Segment's e-commerce spec v2 names become our seven types with their fields; any other name
  is a custom event under its own name; page and screen are page views;
- what has no column of ours (campaign, locale, the e-commerce `products[]`, other properties)
  stays in `properties`; a property that became a column leaves it (ADR 0042: the message
  itself is kept whole as the original).
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal, InvalidOperation
from typing import Any

import pycountry

from trackers.common import Translated, untranslatable
from trackers.event_ids import event_id_for
from trackers.mapping import is_whole_cents

SOURCE = "segment"
MESSAGE_MAX_BYTES = 32 * 1024
BATCH_MAX_BYTES = 500 * 1024
EVENT_CALLS = frozenset({"track", "page", "screen", "group"})
IDENTITY_CALLS = frozenset({"identify", "alias"})
CALLS = EVENT_CALLS | IDENTITY_CALLS

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
_OUR_ECOMMERCE_TYPES = frozenset(ECOMMERCE_TYPES.values())
_PRODUCT_ID = ("product_id", "sku", "id")
_REVENUE = ("revenue", "total", "value")
_ORDER_ID = ("order_id", "checkout_id")
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
# The codes and names as written (most messages): found without `_country`'s calls.
_COUNTRY_AS_WRITTEN = {code: code for code in _COUNTRY_CODES}
_COUNTRY_AS_WRITTEN |= {
    name: country.alpha_2
    for country in pycountry.countries
    for name in (country.name, getattr(country, "common_name", None))
    if name
}


def _text(value: Any) -> str:
    """Ids may come as whole numbers; anything else that is not text is absent. Text is kept
    as sent (validation refuses what cannot be stored)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(data: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = data.get(name)
        if value is not None and value != "":
            return value
    return None


def _first_taken(properties: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The first of `names` present (not null or ""), taken out of `properties`."""
    for name in names:
        value = properties.get(name)
        if value is not None and value != "":
            del properties[name]
            return value
    return None


def _money(value: Any) -> Any:
    """Money as text with at most two decimals; anything else is left for validation to name."""
    if is_whole_cents(value):
        return f"{value:.2f}"  # what the rounding below gives, without Decimal's cost
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    try:
        amount = Decimal(str(value))
        # A finite amount beyond the context's 28 digits cannot be quantized (InvalidOperation).
        return str(amount.quantize(_CENT)) if amount.is_finite() else value
    except InvalidOperation:
        return value


_CENT = Decimal("0.01")


def _quantity(value: Any) -> Any:
    """A whole float (2.0) is the integer it means; other values are validation's to judge."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_EMPTY: dict[str, Any] = {}


def _country(value: Any) -> str:
    """An ISO code from context.location.country (a code or a country's name); "" when it is
    neither, so the country is derived from the IP instead."""
    if not isinstance(value, str):
        return ""
    if len(value) > 64:  # no country's name is that long: not memoised
        return _country_of_text.__wrapped__(value)
    return _country_of_text(str(value))


@functools.lru_cache(maxsize=1024)
def _country_of_text(value: str) -> str:
    """Memoised (short texts only): a shop's visitors come from a few hundred countries."""
    text = value.strip()
    if text.upper() in _COUNTRY_CODES:
        return text.upper()
    return _COUNTRY_BY_NAME.get(text.lower(), "")


def _ecommerce_map(event_type: str, properties: dict[str, Any], payload: dict[str, Any]) -> None:
    """Our columns for one of the seven types from the spec's properties, into `payload`; a
    property that became a column leaves `properties` (the message's copy; ADR 0042)."""
    get = properties.get
    if event_type == "search":
        query = get("query")
        if query is not None and query != "":
            payload["search_query"] = query
            del properties["query"]
        return
    if event_type in ("product_view", "add_to_cart", "remove_from_cart"):
        product_id = _first_taken(properties, _PRODUCT_ID)
        if product_id is not None:
            payload["product_id"] = _text(product_id) or product_id
        category = get("category")
        if category is not None:
            payload["category"] = category
            del properties["category"]
        price = get("price")
        if price is not None:
            payload["price"] = _money(price)
            del properties["price"]
        if event_type != "product_view":
            quantity = get("quantity")
            if quantity is None:
                payload["quantity"] = 1
            else:
                payload["quantity"] = _quantity(quantity)
                del properties["quantity"]
    else:  # checkout_start, purchase
        order_id = _first_taken(properties, _ORDER_ID)
        if order_id is not None:
            payload["order_id"] = _text(order_id) or order_id
        revenue = _first_taken(properties, _REVENUE)
        if revenue is not None:
            payload["revenue"] = _money(revenue)
    currency = get("currency")
    if currency and type(currency) is str:
        payload["currency"] = currency.upper()
        del properties["currency"]


def event_translate(
    message: dict[str, Any],
    *,
    call: str,
    key_id: int | None,
    batch_sent_at: Any,
    received_at: dt.datetime,
    original_json: bytes | None = None,
) -> Translated:
    """A track, page, screen or group message as one of our events. One flat pass, helpers
    written out: this runs for every message of every batch (benchmarks/protocol_opcount.py
    counts it). `messages.message_translate` checked the JSON types of the fields read here,
    and wrote the message's JSON (`original_json`, kept as the original's text)."""
    get = message.get
    properties = get("properties")
    properties = dict(properties) if properties else {}
    if call == "track":
        name = get("event")
        if type(name) is not str or not name:
            return untranslatable(message, "event", "required", "a track call needs an event name")
        event_type = ECOMMERCE_TYPES.get(name, name)
    elif call == "group":
        group_id = _text(get("groupId"))
        if not group_id:
            return untranslatable(message, "groupId", "required", "a group call needs groupId")
        event_type = "group"
        properties = {"group_id": group_id, **(get("traits") or _EMPTY)}
    else:  # page, screen
        event_type = "page_view"
        if get("name") is not None:
            properties.setdefault("name", get("name"))
    user_id = get("userId")
    if type(user_id) is not str:
        user_id = "" if user_id is None else _text(user_id)
    anonymous_id = get("anonymousId")
    if type(anonymous_id) is not str:
        anonymous_id = "" if anonymous_id is None else _text(anonymous_id)
    if not user_id and not anonymous_id:
        return untranslatable(message, "userId", "required", "userId or anonymousId is required")
    timestamp = get("originalTimestamp") or get("timestamp")
    sent_at = get("sentAt") or batch_sent_at
    if not timestamp:  # no event time: it happened when it was sent (corrected), or on arrival
        timestamp = sent_at or received_at.isoformat()
    payload: dict[str, Any] = {
        "event_id": event_id_for(
            source=SOURCE, key_id=key_id, message_id=get("messageId"), message=message
        ),
        "event_type": event_type,
        "timestamp": timestamp,
    }
    if sent_at:
        payload["sent_at"] = sent_at
    if user_id:
        payload["user_id"] = user_id
    if anonymous_id:
        payload["anonymous_id"] = anonymous_id
    context = get("context")
    page = context.get("page") if context else None
    if type(page) is not dict:
        page = _EMPTY
    url = properties.pop("url", None) or page.get("url")
    if url:
        payload["page_url"] = url
    referrer = properties.pop("referrer", None) or page.get("referrer")
    if referrer:
        payload["referrer"] = referrer
    if event_type in _OUR_ECOMMERCE_TYPES:
        _ecommerce_map(event_type, properties, payload)
    if not context:
        if properties:
            payload["properties"] = properties
        return _TUPLE_NEW(Translated, (message, payload, None, "", "", original_json))
    _context_map(context, payload, properties)
    if properties:
        payload["properties"] = properties
    user_agent = context.get("userAgent")
    if type(user_agent) is not str:
        user_agent = "" if user_agent is None else _text(user_agent)
    ip = context.get("ip")
    if type(ip) is not str:
        ip = "" if ip is None else _text(ip)
    return _TUPLE_NEW(Translated, (message, payload, None, user_agent, ip, original_json))


# A Translated made without its Python-level __new__ (a NamedTuple's), which cost about a
# tenth of a microsecond per message: all six fields are given, in order.
_TUPLE_NEW = tuple.__new__


def _context_map(
    context: dict[str, Any], payload: dict[str, Any], properties: dict[str, Any]
) -> None:
    """Device, session and country columns; campaign (as utm_*) and locale properties."""
    get = context.get
    device = get("device")
    if device and type(device) is dict:
        device_type = device.get("type")
        if type(device_type) is str:
            ours = _DEVICE_TYPES.get(device_type) or _DEVICE_TYPES.get(device_type.lower())
            if ours is not None:
                payload["device_type"] = ours
    session = get("sessionId") or get("session_id")
    if session is not None:
        session = session if type(session) is str else _text(session)
        if session:
            payload["session_id"] = session
    location = get("location")
    if location and type(location) is dict:
        country = location.get("country")
        if country and type(country) is str:
            country = _COUNTRY_AS_WRITTEN.get(country) or _country(country)
            if country:
                payload["country"] = country
    campaign = get("campaign")
    if campaign and type(campaign) is dict:
        for name, key in _CAMPAIGN.items():
            value = campaign.get(name)
            if value is not None:
                properties[key] = value
    locale = get("locale")
    if locale is not None:
        properties["locale"] = locale
