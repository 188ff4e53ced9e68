"""PostHog capture into our events: the bodies posthog-python 7.x (`POST /batch/`) and
posthog-js (`/e/`, `/i/v0/e/`, `/capture/`) send, mapped message by message. Pure: no Django.

A body is `{"api_key", "batch": [...], "sent_at"}` (posthog-python), a list of messages or
one message (posthog-js; the key then travels as `properties.token`). Each message has
`event`, `distinct_id`, `properties`, `timestamp` and `uuid` (our dedupe key).
"""

from __future__ import annotations

import functools
from typing import Any

from trackers.mapping import (
    ECOMMERCE_NAMES,
    IdentityCall,
    MappedEvent,
    currency_or_none,
    device_type_of,
    identity_refusal,
    money_or_none,
    quantity_or_none,
    text_or_none,
)

PAGEVIEW = "$pageview"
IDENTIFY = "$identify"
CREATE_ALIAS = "$create_alias"
SET = "$set"
# Properties mapped to our own fields (or SDK bookkeeping already in the original message).
_MAPPED_PROPERTIES = frozenset(
    {
        "token",
        "$current_url",
        "$referrer",
        "$session_id",
        "$device_type",
        "$device_id",
        "$anon_distinct_id",
        "$user_id",
        "$ip",
        "$raw_user_agent",
        "$geoip_country_code",
        "$set",
        "$set_once",
        "$ignore_sent_at",
        "distinct_id",
        "alias",
    }
)
# posthog-js adds some 60 `$` properties to every event; the ones worth a column or a filter
# stay in `properties`, the rest are in the original message kept with the event.
_KEPT_SDK_PROPERTIES = frozenset(
    {
        "$lib",
        "$lib_version",
        "$os",
        "$browser",
        "$browser_version",
        "$pathname",
        "$host",
        "$screen_name",
        "$window_id",
        "$title",
        "$insert_id",
    }
)


_IDENTITY_EVENTS = (IDENTIFY, CREATE_ALIAS, SET)  # a tuple: a name may be unhashable JSON
_OUR_ECOMMERCE_TYPES = frozenset(ECOMMERCE_NAMES.values())


class PosthogBodyError(ValueError):
    """A body that is no PostHog capture body: refused as a whole (field and rule named)."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field, self.rule, self.message = field, rule, message


def posthog_body_messages(body: Any) -> tuple[list[Any], str | None, Any]:
    """(messages, api key, the body's sent_at) of a capture body, in the shapes the SDKs send."""
    if isinstance(body, list):
        messages, key, sent_at = body, None, None
    elif isinstance(body, dict):
        key = text_or_none(body.get("api_key")) or text_or_none(body.get("token"))
        sent_at = body.get("sent_at")
        if "batch" in body:
            messages = body["batch"]
            if not isinstance(messages, list):
                raise PosthogBodyError("batch", "list", "must be a list of events")
        elif "data" in body and isinstance(body["data"], list):  # old posthog-js
            messages = body["data"]
        elif "event" in body:
            messages = [body]
        else:
            raise PosthogBodyError("batch", "required", "send {'batch': [...]} or one event")
    else:
        raise PosthogBodyError("body", "object", "must be a JSON object or a list of events")
    if key is None:
        key = next(filter(None, (_message_key(message) for message in messages[:1])), None)
    return messages, key, sent_at


def _message_key(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    properties = message.get("properties")
    token = properties.get("token") if isinstance(properties, dict) else None
    return text_or_none(message.get("api_key")) or text_or_none(token)


def posthog_message_map(message: Any, *, sent_at: Any = None) -> MappedEvent | IdentityCall:
    """One capture message as our event, or as an identity call ($identify, $create_alias,
    $set). A message too broken to read still maps to an event, which validation refuses with
    the field named, so that it is quarantined with its original.

    The payload is built with only the fields the message carries (null means absent to the
    schema layer too): one flat pass, as this runs for every message of every batch."""
    if not isinstance(message, dict):
        error = ("event", "object", "each event must be a JSON object")
        return MappedEvent(payload={}, original=message, errors=[error])
    get = message.get
    properties = get("properties")
    if type(properties) is not dict:
        properties = properties if isinstance(properties, dict) else {}
    prop = properties.get
    name = get("event")
    distinct_id = get("distinct_id")
    if type(distinct_id) is not str or not distinct_id:  # text as sent is the common case
        distinct_id = text_or_none(distinct_id) or text_or_none(prop("distinct_id"))
    if name in _IDENTITY_EVENTS:
        identity = _identity_call(name, distinct_id, message, properties)
        if isinstance(identity, tuple):  # ids or traits the person records cannot hold
            return MappedEvent(payload={}, original=message, errors=[identity])
        if identity is not None:
            return identity
    # Any JSON may come as the name: only text is looked up (validation names the rest).
    if name == PAGEVIEW:
        event_type = "page_view"
    elif type(name) is str:
        event_type = ECOMMERCE_NAMES.get(name, name)
    else:
        event_type = name
    foreign_id = get("uuid")
    if type(foreign_id) is not str or not foreign_id:
        foreign_id = text_or_none(foreign_id)
    payload: dict[str, Any] = {} if event_type is None else {"event_type": event_type}
    if foreign_id is not None:
        payload["event_id"] = foreign_id
    timestamp = get("timestamp")
    if timestamp is not None:
        payload["timestamp"] = timestamp
    if not prop("$ignore_sent_at"):
        sent_at = get("sent_at", sent_at)
        if sent_at is not None:
            payload["sent_at"] = sent_at
    device_id = prop("$device_id")
    anonymous_id = prop("$anon_distinct_id")
    if device_id is not None and (device_id := text_or_none(device_id)) is not None:
        anonymous_id = device_id
        if distinct_id == device_id:  # posthog-js before identify: the id is the device's
            distinct_id = None
    elif anonymous_id is not None:
        anonymous_id = text_or_none(anonymous_id)
    if distinct_id is not None:
        payload["user_id"] = distinct_id
    if anonymous_id is not None:
        payload["anonymous_id"] = anonymous_id
    _columns_map(prop, payload)
    kept = dict(properties)  # a copy, then deletions: 5x faster than building it key by key
    for key in _dropped_keys(tuple(properties)):
        del kept[key]
    payload["properties"] = kept
    if type(event_type) is str and event_type in _OUR_ECOMMERCE_TYPES:
        _ecommerce_map(event_type, properties, payload)
    user_agent = prop("$raw_user_agent")
    ip = prop("$ip")
    return MappedEvent(  # positional: payload, original, foreign_id, user_agent, ip
        payload,
        message,
        foreign_id,
        None if user_agent is None else text_or_none(user_agent),
        None if ip is None else text_or_none(ip),
    )


def _columns_map(prop: Any, payload: dict[str, Any]) -> None:
    """Our columns from PostHog's `$` properties (`prop`: the properties' get), each when its
    property is present and text (or a number). Written out: this runs for every message."""
    value = prop("$session_id")
    if value is not None and (value := value if type(value) is str else text_or_none(value)):
        payload["session_id"] = value
    value = prop("$device_type")
    if value is not None and (
        value := (type(value) is str and _DEVICE_TYPES_AS_WRITTEN.get(value))
        or device_type_of(value)
    ):
        payload["device_type"] = value
    value = prop("$geoip_country_code")
    if value is not None and (value := value if type(value) is str else text_or_none(value)):
        payload["country"] = value
    value = prop("$current_url")
    if value is not None and (value := value if type(value) is str else text_or_none(value)):
        payload["page_url"] = value
    value = prop("$referrer")
    if (
        value is not None
        and (value := value if type(value) is str else text_or_none(value))
        and value != "$direct"
    ):
        payload["referrer"] = value


# posthog-js's spellings (and ours), found without `device_type_of`'s calls.
_DEVICE_TYPES_AS_WRITTEN = {
    spelling: kind
    for kind in ("desktop", "mobile", "tablet")
    for spelling in (kind, kind.title(), kind.upper())
}


@functools.lru_cache(maxsize=512)
def _dropped_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The property names not kept in `properties`; memoised per key set."""
    return tuple(
        key
        for key in keys
        if key in _MAPPED_PROPERTIES or (key[:1] == "$" and key not in _KEPT_SDK_PROPERTIES)
    )


def _identity_call(
    name: Any, distinct_id: str | None, message: dict, properties: dict
) -> IdentityCall | tuple[str, str, str] | None:
    """$identify links `$anon_distinct_id` to the distinct id and sets `$set` traits;
    $create_alias links its `alias` and distinct id; $set only sets traits. A (field, rule,
    message) refusal when the ids or traits cannot be stored; None: not an identity call."""
    if name not in (IDENTIFY, CREATE_ALIAS, SET) or distinct_id is None:
        return None
    traits = message.get("$set") or properties.get("$set") or {}
    traits = traits if isinstance(traits, dict) else {}
    if name == CREATE_ALIAS:
        alias = text_or_none(properties.get("alias"))
        if alias is None:
            return None
        refusal = identity_refusal({"distinct_id": distinct_id, "alias": alias}, {})
        if refusal is not None:
            return refusal
        # posthog-python: distinct_id is the previous id, alias the new one.
        return IdentityCall("alias", alias, anonymous_id=distinct_id, original=message)
    anonymous_id = text_or_none(properties.get("$anon_distinct_id"))
    ids = {"distinct_id": distinct_id, "$anon_distinct_id": anonymous_id}
    refusal = identity_refusal(ids, traits)
    if refusal is not None:
        return refusal
    if name == IDENTIFY and anonymous_id is not None and anonymous_id != distinct_id:
        return IdentityCall(
            "alias", distinct_id, anonymous_id=anonymous_id, traits=traits, original=message
        )
    return IdentityCall("identify", distinct_id, traits=traits, original=message)


def _ecommerce_map(event_type: str, properties: dict[str, Any], payload: dict[str, Any]) -> None:
    """Our product and order fields from Segment's e-commerce v2 property names (PostHog's
    documented e-commerce spec uses them too), into `payload` when present: the first of
    `products[]` when no top-level product is given. A top-level property that became a
    column leaves `payload["properties"]` (ADR 0042: the message is kept whole)."""
    prop = properties.get
    kept = payload["properties"]
    if event_type == "search":
        _take(payload, "search_query", text_or_none(prop("query")), kept, "query")
        return
    if event_type == "purchase":
        _take(payload, "order_id", text_or_none(prop("order_id")), kept, "order_id")
        name = next((name for name in _REVENUE if name in properties), "value")
        _take(payload, "revenue", money_or_none(prop(name)), kept, name)
        _take(payload, "currency", currency_or_none(prop("currency")), kept, "currency")
        return
    product, top_level = properties, kept
    if "product_id" not in properties and "sku" not in properties:
        products = prop("products")
        if isinstance(products, list) and products:
            product = products[0] if isinstance(products[0], dict) else {}
            top_level = {}  # the product's fields stay in `products`
    get = product.get
    product_id = text_or_none(get("product_id"))
    if product_id is not None:
        _take(payload, "product_id", product_id, top_level, "product_id")
    else:
        _take(payload, "product_id", text_or_none(get("sku")), top_level, "sku")
    _take(payload, "category", text_or_none(get("category")), top_level, "category")
    _take(payload, "price", money_or_none(get("price")), top_level, "price")
    quantity = quantity_or_none(get("quantity"))
    if quantity is None and event_type in ("add_to_cart", "remove_from_cart"):
        payload["quantity"] = 1
    else:
        _take(payload, "quantity", quantity, top_level, "quantity")
    _take(payload, "currency", currency_or_none(prop("currency")), kept, "currency")


_REVENUE = ("revenue", "total", "value")  # the first present is the revenue


def _take(
    payload: dict[str, Any], column: str, value: Any, kept: dict[str, Any], name: str
) -> None:
    """`value` (from property `name`) into `column`, when there is one; the property then
    leaves the kept properties."""
    if value is not None:
        payload[column] = value
        kept.pop(name, None)


FLAGS_ANSWER: dict[str, Any] = {
    # /flags/?v=4 (posthog-python 7.x, posthog-js) and /decide/ (older SDKs): no flags, no
    # errors, nothing quota-limited, so an SDK goes on with every flag off.
    "flags": {},
    "featureFlags": {},
    "featureFlagPayloads": {},
    "errorsWhileComputingFlags": False,
    "sessionRecording": False,
    "supportedCompression": ["gzip", "gzip-js"],
}
