"""The Snowplow tracker protocol into our events: `GET /i` (one event in the query string) and
`POST /com.snowplowanalytics.snowplow/tp2` (a `payload_data` self-describing JSON holding a
list of events), mapped event by event. Pure: no Django.

Each event is a flat map of short names (the tracker protocol): `e` the kind (pv page view, se
structured, ue self-describing, tr/ti legacy transaction), `eid` the event id (our dedupe key),
`dtm`/`stm` the device's created and sent times (skew correction), `ttm` a true timestamp,
`uid`/`duid`/`sid` the user, anonymous and session ids, `url`/`refr` the page, `ue_pr`/`ue_px`
and `co`/`cx` the self-describing event and its entities (JSON or base64). `aid`, the tracker's
app id, carries our ingestion key (ADR 0017).
"""

from __future__ import annotations

import binascii
import functools
import re
from typing import Any, NamedTuple

import orjson

from trackers.common import datetime_of_millis
from trackers.mapping import (
    IdentityCall,
    MappedEvent,
    money_or_none,
    quantity_or_none,
    text_or_none,
)
from trackers.segment.identity import IDENTITY_ID_MAX_CHARS

PAYLOAD_DATA_SCHEMA = re.compile(
    r"^iglu:com\.snowplowanalytics\.snowplow/payload_data/jsonschema/1-\d+-\d+$"
)
_IGLU = re.compile(r"^iglu:(?P<vendor>[^/]+)/(?P<name>[^/]+)/(?P<format>[^/]+)/(?P<version>.+)$")
ECOMMERCE_VENDOR = "com.snowplowanalytics.snowplow.ecommerce"
SNOWPLOW_VENDOR = "com.snowplowanalytics.snowplow"
# Snowplow e-commerce plugin actions (snowplow_ecommerce_action `type`) that are our types.
ECOMMERCE_ACTIONS = {
    "product_view": "product_view",
    "add_to_cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "checkout_step": "checkout_start",
    "transaction": "purchase",
}
# The platform (`p`) says the device class for some platforms; web and server events leave it
# to the User-Agent.
PLATFORM_DEVICE_TYPES = {"pc": "desktop", "mob": "mobile", "tv": "other", "cnsl": "other"}
PLATFORM_DEVICE_TYPES |= {"iot": "other", "headset": "other"}
# What a Snowplow collector records as the network user id when it sets no cookie: the
# anonymous id of an event that names no user at all (a server tracker without a Subject).
COOKIELESS_USER = "00000000-0000-4000-a000-000000000000"
_MAPPED = frozenset(
    {"e", "eid", "dtm", "stm", "ttm", "aid", "uid", "duid", "nuid", "tnuid", "sid", "url"}
    | {"refr", "ua", "ip", "ue_pr", "ue_px", "co", "cx", "p"}
)
_LEGACY_TRANSACTION = {"tr_id", "tr_tt", "tr_cu"}


class SnowplowBodyError(ValueError):
    """A tp2 body that is not a payload_data list: refused as a whole (field and rule named)."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field, self.rule, self.message = field, rule, message


def snowplow_body_events(body: Any) -> list[Any]:
    """The events of a tp2 POST body (`{"schema": payload_data, "data": [...]}`)."""
    if not isinstance(body, dict):
        raise SnowplowBodyError("body", "object", "must be a payload_data self-describing JSON")
    schema = body.get("schema")
    if not isinstance(schema, str) or not PAYLOAD_DATA_SCHEMA.match(schema):
        raise SnowplowBodyError(
            "schema", "payload_data", "must be iglu:com.snowplowanalytics.snowplow/payload_data"
        )
    data = body.get("data")
    if not isinstance(data, list):
        raise SnowplowBodyError("data", "list", "must be a list of events")
    return data


def snowplow_key(events: list[Any]) -> str | None:
    """The app id of the first event that has one: the tracker's `app_id` is our key."""
    for event in events:
        if isinstance(event, dict) and (key := text_or_none(event.get("aid"))):
            return key
    return None


def _epoch_millis(value: Any, name: str, errors: list) -> int | None:
    """Epoch milliseconds (int or digit string); else None, and an error unless it is empty."""
    if type(value) is str and value.isdecimal() and len(value) <= 15:
        return int(value)
    if type(value) is int and value >= 0:
        return value
    if value != "":
        errors.append((name, "epoch_millis", "must be epoch milliseconds"))
    return None


def _decoded(event: dict, json_field: str, base64_field: str, errors: list) -> Any:
    """The decoded self-describing value (None when absent or undecodable: error listed)."""
    value, bad_field = _self_describing(event, json_field, base64_field)
    if bad_field:
        errors.append((bad_field, "json", f"{bad_field} must be {_ENCODED[bad_field]}"))
    return value


def _self_describing(event: dict, json_field: str, base64_field: str) -> tuple[Any, str | None]:
    """(decoded value, None) or (None, the field that could not be decoded)."""
    raw, field = event.get(json_field), json_field
    if raw is None:
        raw, field = event.get(base64_field), base64_field
        if raw is None:
            return None, None
        if type(raw) is not str:
            return None, field
        try:
            # Either base64 alphabet (trackers send the URL-safe one); padding optional. What
            # base64.urlsafe_b64decode does, in C without its Python layers (per event, twice).
            raw = binascii.a2b_base64(raw.encode("ascii").translate(_TO_STANDARD_BASE64) + b"==")
        except (binascii.Error, ValueError):
            return None, field
    if not isinstance(raw, str | bytes):
        return None, field
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError:
        return None, field


_TO_STANDARD_BASE64 = bytes.maketrans(b"-_", b"+/")


def _schema_parts(value: Any) -> tuple[str, str] | None:
    return _iglu_parts(value) if type(value) is str else None


@functools.lru_cache(maxsize=1024)
def _iglu_parts(schema: str) -> tuple[str, str] | None:
    """(vendor, name) of an Iglu URI; memoised, since a tracker sends the same few schemas."""
    match = _IGLU.match(schema)
    return (match["vendor"], match["name"]) if match else None


def _entities(contexts: Any) -> dict[str, list[dict]]:
    """The entities of a `contexts` envelope by schema name (vendor/name)."""
    by_name: dict[str, list[dict]] = {}
    data = contexts.get("data") if isinstance(contexts, dict) else None
    for entity in data if isinstance(data, list) else ():
        if not isinstance(entity, dict) or not isinstance(entity.get("data"), dict):
            continue
        parts = _schema_parts(entity.get("schema"))
        if parts:
            by_name.setdefault("/".join(parts), []).append(entity["data"])
    return by_name


def snowplow_event_map(event: Any) -> MappedEvent:
    """One tracker-protocol event as our event (errors listed when it cannot be read). The
    payload gets only the fields the event carries; one pass, as it runs for every event."""
    if not isinstance(event, dict):
        return MappedEvent(payload={}, original=event, errors=[("event", "object", _NOT_OBJ)])
    get = event.get
    errors: list[tuple[str, str, str]] = []
    unstruct = contexts = None
    if get("ue_pr") is not None or get("ue_px") is not None:
        unstruct = _decoded(event, "ue_pr", "ue_px", errors)
    if get("co") is not None or get("cx") is not None:
        contexts = _decoded(event, "co", "cx", errors)
    ttm, dtm, stm = get("ttm"), get("dtm"), get("stm")
    true_ms = None if ttm is None else _epoch_millis(ttm, "ttm", errors)
    created_ms = None if dtm is None else _epoch_millis(dtm, "dtm", errors)
    sent_ms = None if stm is None else _epoch_millis(stm, "stm", errors)
    if true_ms is not None:
        sent_ms = None
    elif created_ms is None:
        # No event time (a hand-written pixel): it happened when sent, else when received.
        created_ms, sent_ms = sent_ms, None
    payload: dict[str, Any] = {}
    keys = _plan(tuple(event))
    for name, column in keys.texts:
        value = event[name]
        if type(value) is not str:
            value = text_or_none(value)
        if value:  # text_or_none gives no empty text: "" is absent
            payload[column] = value
    moment = true_ms if true_ms is not None else created_ms
    # Times as aware datetimes: the schema layer takes them as they are (no ISO text to
    # write here and parse there).
    if moment is not None and (when := datetime_of_millis(moment)) is not None:
        payload["timestamp"] = when
    if sent_ms is not None and (when := datetime_of_millis(sent_ms)) is not None:
        payload["sent_at"] = when
    if "anonymous_id" not in payload and "user_id" not in payload:
        payload["anonymous_id"] = COOKIELESS_USER
    platform = get("p")
    if type(platform) is str and (device_type := PLATFORM_DEVICE_TYPES.get(platform)):
        payload["device_type"] = device_type
    extra = (
        dict(zip(keys.extra, map(event.__getitem__, keys.extra), strict=True))
        if keys.extra is not None
        else dict(event)
    )
    entities = _entities(contexts) if contexts is not None else {}
    for name, value in _kind_fields(event, unstruct, entities, errors, extra).items():
        if value is not None:
            payload[name] = value
    user_agent, ip = get("ua"), get("ip")
    return MappedEvent(
        payload=payload,
        original=event,
        foreign_id=payload.get("event_id"),
        user_agent=None if user_agent is None else text_or_none(user_agent),
        ip=None if ip is None else text_or_none(ip),
        errors=errors,
    )


# Tracker fields that are text columns of ours. `duid`, `nuid` and `tnuid` are the anonymous id
# in that order of preference (the first present wins, as each is read only when no earlier
# one gave text).
_TEXT_FIELDS = {
    "eid": "event_id",
    "uid": "user_id",
    "tnuid": "anonymous_id",
    "nuid": "anonymous_id",
    "duid": "anonymous_id",
    "sid": "session_id",
    "url": "page_url",
    "refr": "referrer",
}


class _KeyPlan(NamedTuple):
    """What to read from an event with these keys: (field, column) of the text fields present,
    later ones overriding (so `duid` over `nuid` over `tnuid`), and the names kept as
    properties (None: all)."""

    texts: tuple[tuple[str, str], ...]
    extra: tuple[str, ...] | None


@functools.lru_cache(maxsize=256)
def _plan(keys: tuple[str, ...]) -> _KeyPlan:
    """Memoised per key set: a tracker sends events of a few shapes."""
    present = set(keys)
    texts = tuple((name, column) for name, column in _TEXT_FIELDS.items() if name in present)
    extra = tuple(key for key in keys if key not in _MAPPED and key[:3] != "se_")
    return _KeyPlan(texts, None if len(extra) == len(keys) else extra)


_NOT_OBJ = "each event must be a JSON object"
_ENCODED = {
    "ue_pr": "a self-describing JSON",
    "ue_px": "base64 of a self-describing JSON",
    "co": "a contexts JSON",
    "cx": "base64 of a contexts JSON",
}


def _kind_fields(
    event: dict, unstruct: Any, entities: dict[str, list[dict]], errors: list, extra: dict
) -> dict[str, Any]:
    """event_type, its e-commerce fields and properties (`extra`: the fields not mapped), by
    the event's kind `e`."""
    kind = event.get("e")
    if kind == "pv":
        return {"event_type": "page_view", "properties": extra}
    if kind == "pp":
        return {"event_type": "page_ping", "properties": extra}
    if kind == "se":
        structured = {k[3:]: v for k, v in event.items() if k.startswith("se_")}
        name = text_or_none(structured.get("ac"))
        if name is None:
            errors.append(("se_ac", "required", "a structured event needs its action"))
        return {"event_type": name, "properties": extra | structured}
    if kind == "tr":
        extra = {k: v for k, v in extra.items() if k not in _LEGACY_TRANSACTION}
        return {
            "event_type": "purchase",
            "order_id": text_or_none(event.get("tr_id")),
            "revenue": money_or_none(event.get("tr_tt")),
            "currency": text_or_none(event.get("tr_cu")),
            "properties": extra,
        }
    if kind == "ti":
        return {"event_type": "transaction_item", "properties": extra}
    if kind == "ue":
        return _self_describing_fields(unstruct, entities, extra, errors)
    errors.append(("e", "allowed_values", "must be pv, pp, se, ue, tr or ti"))
    return {"properties": extra}


def _self_describing_fields(
    unstruct: Any, entities: dict[str, list[dict]], extra: dict, errors: list
) -> dict[str, Any]:
    inner = unstruct.get("data") if isinstance(unstruct, dict) else None
    parts = _schema_parts(inner.get("schema")) if isinstance(inner, dict) else None
    if parts is None or not isinstance(inner.get("data"), dict):
        if not any(error[0] in ("ue_pr", "ue_px") for error in errors):
            errors.append(("ue_pr", "required", "a self-describing event needs its schema/data"))
        return {"properties": extra}
    vendor, name = parts
    data = inner["data"]
    properties = {**extra, "schema": inner["schema"], **data}
    if vendor == ECOMMERCE_VENDOR and name == "snowplow_ecommerce_action":
        return _ecommerce_action(data, entities, properties)
    if vendor == SNOWPLOW_VENDOR and name == "site_search":
        terms = data.get("terms")
        query = " ".join(str(t) for t in terms) if isinstance(terms, list) else None
        return {"event_type": "search", "search_query": query or None, "properties": properties}
    if vendor == SNOWPLOW_VENDOR and name in ("add_to_cart", "remove_from_cart"):
        return {
            "event_type": name,
            "product_id": text_or_none(data.get("sku")),
            "category": text_or_none(data.get("category")),
            "price": money_or_none(data.get("unitPrice")),
            "quantity": quantity_or_none(data.get("quantity")),
            "currency": text_or_none(data.get("currency")),
            "properties": properties,
        }
    return {"event_type": name, "properties": properties}


_CHECKOUT_STEP_ENTITY = f"{ECOMMERCE_VENDOR}/checkout_step"
_PRODUCT_ENTITY = f"{ECOMMERCE_VENDOR}/product"
_TRANSACTION_ENTITY = f"{ECOMMERCE_VENDOR}/transaction"
_PRODUCT_TYPES = frozenset({"product_view", "add_to_cart", "remove_from_cart"})


def _ecommerce_action(
    data: dict, entities: dict[str, list[dict]], properties: dict
) -> dict[str, Any]:
    """The e-commerce plugin's actions with their product / transaction entities. A checkout
    step other than the first is a custom `checkout_step` event: the funnel counts one start."""
    action = data.get("type")
    if type(action) is not str or not action:  # text as sent is the common case
        action = text_or_none(action)
    event_type = ECOMMERCE_ACTIONS.get(action, action)
    if action == "checkout_step":
        steps = entities.get(_CHECKOUT_STEP_ENTITY, [])
        if steps and steps[0].get("step") not in (None, 1):
            event_type = "checkout_step"
    products = entities.get(_PRODUCT_ENTITY, [])
    fields: dict[str, Any] = {"event_type": event_type}
    if products:
        properties = {**properties, "products": products}
    if event_type in _PRODUCT_TYPES and products:
        get = products[0].get
        product_id, category, currency = get("id"), get("category"), get("currency")
        # text_or_none's answers, its common case (non-empty text) written out
        fields |= {
            "product_id": product_id
            if type(product_id) is str and product_id
            else text_or_none(product_id),
            "category": category if type(category) is str and category else text_or_none(category),
            "price": money_or_none(get("price")),
            "quantity": quantity_or_none(get("quantity")),
            "currency": currency if type(currency) is str and currency else text_or_none(currency),
        }
        if event_type != "product_view" and fields["quantity"] is None:
            fields["quantity"] = 1
    transactions = entities.get(_TRANSACTION_ENTITY, [])
    if event_type == "purchase" and transactions:
        transaction = transactions[0]
        fields |= {
            "order_id": text_or_none(transaction.get("transaction_id")),
            "revenue": money_or_none(transaction.get("revenue")),
            "currency": text_or_none(transaction.get("currency")),
        }
    return fields | {"properties": properties}


LINKS_REMEMBERED = 10_000


def _linkable(value: str) -> bool:
    return len(value) <= IDENTITY_ID_MAX_CHARS and "\x00" not in value


def snowplow_user_links(events: list[Any], seen: dict[tuple[str, str], None]) -> list[IdentityCall]:
    """The browser tracker's identify is `setUserId`: from then on its events carry the user id
    `uid` beside the browser's `duid`. Each new (duid, uid) pair links the two (an alias call,
    ADR 0037), once per process: `seen` remembers the last LINKS_REMEMBERED pairs, so an
    identified visitor's every request does not take the id graph's lock again."""
    calls = []
    for event in events:
        if not isinstance(event, dict):
            continue
        user_id, device_id = text_or_none(event.get("uid")), text_or_none(event.get("duid"))
        if user_id is None or device_id is None or device_id == user_id:
            continue
        if not (_linkable(user_id) and _linkable(device_id)):
            continue  # the event itself is refused by validation, with the field named
        if (device_id, user_id) in seen:
            continue
        seen[(device_id, user_id)] = None
        if len(seen) > LINKS_REMEMBERED:
            del seen[next(iter(seen))]
        calls.append(IdentityCall("alias", user_id, anonymous_id=device_id, original=event))
    return calls
