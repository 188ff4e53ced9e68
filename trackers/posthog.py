"""PostHog capture into our events: the bodies posthog-python 7.x (`POST /batch/`) and
posthog-js (`/e/`, `/i/v0/e/`, `/capture/`) send, mapped message by message. Pure: no Django.

A body is `{"api_key", "batch": [...], "sent_at"}` (posthog-python), a list of messages or
one message (posthog-js; the key then travels as `properties.token`). Each message has
`event`, `distinct_id`, `properties`, `timestamp` and `uuid` (our dedupe key).
"""

from __future__ import annotations

from typing import Any

from trackers.mapping import (
    ECOMMERCE_NAMES,
    IdentityCall,
    MappedEvent,
    device_type_of,
    drop_absent,
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
    the field named, so that it is quarantined with its original."""
    if not isinstance(message, dict):
        error = ("event", "object", "each event must be a JSON object")
        return MappedEvent(payload={}, original=message, errors=[error])
    properties = message.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    name = message.get("event")
    distinct_id = text_or_none(message.get("distinct_id")) or text_or_none(
        properties.get("distinct_id")
    )
    if name in _IDENTITY_EVENTS:
        identity = _identity_call(name, distinct_id, message, properties)
        if identity is not None:
            return identity
    device_id = text_or_none(properties.get("$device_id"))
    user_id, anonymous_id = distinct_id, text_or_none(properties.get("$anon_distinct_id"))
    if device_id is not None:
        anonymous_id = device_id
        if distinct_id == device_id:  # posthog-js before identify: the id is the device's
            user_id = None
    sent_at = None if properties.get("$ignore_sent_at") else message.get("sent_at", sent_at)
    # Any JSON may come as the name: only text is looked up (validation names the rest).
    if name == PAGEVIEW:
        event_type = "page_view"
    elif type(name) is str:
        event_type = ECOMMERCE_NAMES.get(name, name)
    else:
        event_type = name
    payload = {
        "event_id": text_or_none(message.get("uuid")),
        "event_type": event_type,
        "timestamp": message.get("timestamp"),
        "sent_at": sent_at,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "session_id": text_or_none(properties.get("$session_id")),
        "device_type": device_type_of(properties.get("$device_type")),
        "country": text_or_none(properties.get("$geoip_country_code")),
        "page_url": text_or_none(properties.get("$current_url")),
        "referrer": _referrer(properties.get("$referrer")),
        **ecommerce_fields(event_type, properties),
        "properties": _kept_properties(properties),
    }
    return MappedEvent(
        payload=drop_absent(payload),
        original=message,
        foreign_id=payload["event_id"],
        user_agent=text_or_none(properties.get("$raw_user_agent")),
        ip=text_or_none(properties.get("$ip")),
    )


def _referrer(value: Any) -> str | None:
    text = text_or_none(value)
    return None if text == "$direct" else text


def _identity_call(
    name: Any, distinct_id: str | None, message: dict, properties: dict
) -> IdentityCall | None:
    """$identify links `$anon_distinct_id` to the distinct id and sets `$set` traits;
    $create_alias links its `alias` and distinct id; $set only sets traits."""
    if name not in (IDENTIFY, CREATE_ALIAS, SET) or distinct_id is None:
        return None
    traits = message.get("$set") or properties.get("$set") or {}
    traits = traits if isinstance(traits, dict) else {}
    if name == CREATE_ALIAS:
        alias = text_or_none(properties.get("alias"))
        if alias is None:
            return None
        # posthog-python: distinct_id is the previous id, alias the new one.
        return IdentityCall("alias", alias, anonymous_id=distinct_id, original=message)
    anonymous_id = text_or_none(properties.get("$anon_distinct_id"))
    if name == IDENTIFY and anonymous_id is not None and anonymous_id != distinct_id:
        return IdentityCall(
            "alias", distinct_id, anonymous_id=anonymous_id, traits=traits, original=message
        )
    return IdentityCall("identify", distinct_id, traits=traits, original=message)


def ecommerce_fields(event_type: Any, properties: dict[str, Any]) -> dict[str, Any]:
    """Our product and order fields from Segment's e-commerce v2 property names (PostHog's
    documented e-commerce spec uses them too): the first of `products[]` when no top-level
    product is given."""
    if type(event_type) is not str or event_type not in _OUR_ECOMMERCE_TYPES:
        return {}
    product = properties
    products = properties.get("products")
    has_product = "product_id" in properties or "sku" in properties
    if not has_product and isinstance(products, list) and products:
        product = products[0] if isinstance(products[0], dict) else {}
    fields = {
        "product_id": text_or_none(product.get("product_id")) or text_or_none(product.get("sku")),
        "category": text_or_none(product.get("category")),
        "price": money_or_none(product.get("price")),
        "quantity": quantity_or_none(product.get("quantity")),
        "currency": text_or_none(properties.get("currency")),
    }
    if event_type == "purchase":
        revenue = properties.get("revenue", properties.get("total", properties.get("value")))
        fields["order_id"] = text_or_none(properties.get("order_id"))
        fields["revenue"] = money_or_none(revenue)
        fields["product_id"] = fields["category"] = fields["price"] = None
        fields["quantity"] = None
    if event_type == "search":
        fields = {"search_query": text_or_none(properties.get("query"))}
    if event_type in ("add_to_cart", "remove_from_cart") and fields["quantity"] is None:
        fields["quantity"] = 1
    return fields


def _kept_properties(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in properties.items()
        if key not in _MAPPED_PROPERTIES
        and (not key.startswith("$") or key in _KEPT_SDK_PROPERTIES)
    }


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
