"""What a Snowplow event's kind `e` gives our event (trackers.snowplow maps the fields every
kind shares): its event_type, e-commerce columns and properties. Pure: no Django.

A field that fills one of our columns leaves `properties` (ADR 0043): the action's `type`, the
first product's id, category, price, quantity and currency, a search's `terms`, a structured
event's action `ac`, a recognised self-describing event's `schema`. The original message is
kept whole with the event, so nothing is lost; what stays is what no column holds.

A self-describing event's digest (`SelfDescribing`, and the values decoded into it) is shared
by every event sent with the same `ue_pr`/`ue_px` text (trackers.snowplow memoises it):
nothing here changes it, properties are new dicts.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

from trackers.mapping import currency_or_none, money_or_none, quantity_or_none, text_or_none

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
_LEGACY_TRANSACTION = ("tr_id", "tr_tt", "tr_cu")
_PRODUCT_TYPES = frozenset({"product_view", "add_to_cart", "remove_from_cart"})
# What a self-describing schema is to us, by (vendor, name).
_ACTION, _SEARCH, _CART, _OTHER = "action", "search", "cart", "other"
_RECOGNISED = {
    (ECOMMERCE_VENDOR, "snowplow_ecommerce_action"): _ACTION,
    (SNOWPLOW_VENDOR, "site_search"): _SEARCH,
    (SNOWPLOW_VENDOR, "add_to_cart"): _CART,
    (SNOWPLOW_VENDOR, "remove_from_cart"): _CART,
}
_ENTITIES = ("product", "transaction", "checkout_step")


def kind_fields_into(
    payload: dict[str, Any],
    event: dict,
    unstruct: SelfDescribing | None,
    contexts: Any,
    extra: dict[str, Any],
    errors: list,
) -> None:
    """Write the event_type, the kind's columns and `properties` (`extra`: the tracker fields
    not mapped, a dict of this event's own) into `payload`; errors listed. `unstruct`: the
    self-describing event's digest (None: absent or undecodable)."""
    kind = event.get("e")
    if kind == "pv":
        payload["event_type"] = "page_view"
    elif kind == "ue":
        extra = _self_describing_into(payload, unstruct, contexts, extra, errors)
    elif kind == "pp":
        payload["event_type"] = "page_ping"
    elif kind == "se":
        name = text_or_none(event.get("se_ac"))
        if name is None:
            errors.append(("se_ac", "required", "a structured event needs its action"))
        else:
            payload["event_type"] = name
        for key, value in event.items():
            if key[:3] == "se_" and key != "se_ac":
                extra[key[3:]] = value
    elif kind == "tr":
        payload["event_type"] = "purchase"
        _columns_into(
            payload,
            order_id=text_or_none(event.get("tr_id")),
            revenue=money_or_none(event.get("tr_tt")),
            currency=currency_or_none(event.get("tr_cu")),
        )
        for key in _LEGACY_TRANSACTION:
            extra.pop(key, None)
    elif kind == "ti":
        payload["event_type"] = "transaction_item"
    else:
        errors.append(("e", "allowed_values", "must be pv, pp, se, ue, tr or ti"))
    if extra:
        payload["properties"] = extra


def _columns_into(payload: dict[str, Any], **columns: Any) -> None:
    for column, value in columns.items():
        if value is not None:
            payload[column] = value


@functools.lru_cache(maxsize=1024)
def iglu_parts(schema: str) -> tuple[str, str] | None:
    """(vendor, name) of an Iglu URI; memoised, since a tracker sends the same few schemas."""
    match = _IGLU.match(schema)
    return (match["vendor"], match["name"]) if match else None


class SelfDescribing(NamedTuple):
    """What a self-describing event gives our event, worked out once per distinct `ue_pr` /
    `ue_px` text (trackers.snowplow memoises it; shared by events, so never changed): the
    kind (None: no schema and data), the columns it fills (event_type first), what its data
    adds to properties, and an e-commerce action's type."""

    kind: str | None
    columns: dict[str, Any]
    properties: dict[str, Any]
    action: str | None = None


_NO_SCHEMA = SelfDescribing(None, {}, {})


def self_describing_digest(unstruct: Any) -> SelfDescribing:
    """A decoded `unstruct_event` envelope (`{"schema": …, "data": {"schema": …, "data": …}}`)
    as the fields it gives our event."""
    inner = unstruct.get("data") if isinstance(unstruct, dict) else None
    schema = inner.get("schema") if isinstance(inner, dict) else None
    parts = iglu_parts(schema) if type(schema) is str else None
    data = inner.get("data") if parts is not None else None
    if not isinstance(data, dict):
        return _NO_SCHEMA
    recognised = _RECOGNISED.get(parts)
    if recognised is _ACTION:
        action = text_or_none(data.get("type"))
        if action is None:  # refused by validation (event_type required): data kept as sent
            return SelfDescribing(_ACTION, {}, data)
        columns = {"event_type": ECOMMERCE_ACTIONS.get(action, action)}
        return SelfDescribing(_ACTION, columns, _without({}, data, ("type",)), action)
    if recognised is _SEARCH:
        terms = data.get("terms")
        query = " ".join(str(t) for t in terms) if isinstance(terms, list) else None
        if query:
            columns = {"event_type": "search", "search_query": query}
            return SelfDescribing(_SEARCH, columns, _without({}, data, ("terms",)))
        return SelfDescribing(_SEARCH, {"event_type": "search"}, data)
    if recognised is _CART:
        mapped = {
            "sku": ("product_id", text_or_none(data.get("sku"))),
            "category": ("category", text_or_none(data.get("category"))),
            "unitPrice": ("price", money_or_none(data.get("unitPrice"))),
            "quantity": ("quantity", quantity_or_none(data.get("quantity"))),
            "currency": ("currency", currency_or_none(data.get("currency"))),
        }
        columns = {"event_type": parts[1]}
        columns |= {column: value for column, value in mapped.values() if value is not None}
        filled = [key for key, (_, value) in mapped.items() if value is not None]
        return SelfDescribing(_CART, columns, _without({}, data, filled))
    return SelfDescribing(_OTHER, {"event_type": parts[1]}, {"schema": schema, **data})


def _self_describing_into(
    payload: dict[str, Any], digest: SelfDescribing | None, contexts: Any, extra: dict, errors: list
) -> dict[str, Any]:
    """The self-describing event's fields into `payload`; returns its properties."""
    if digest is None or digest.kind is None:
        if not any(error[0] in ("ue_pr", "ue_px") for error in errors):
            errors.append(("ue_pr", "required", "a self-describing event needs its schema/data"))
        return extra
    payload.update(digest.columns)
    properties = extra | digest.properties if digest.properties else extra
    if digest.action is not None:
        _ecommerce_action_into(payload, digest.action, contexts, properties)
    return properties


def _without(extra: dict, data: dict, mapped: Any) -> dict[str, Any]:
    """`extra` and the event's data, less the data's fields that went to columns."""
    properties = extra | data
    for key in mapped:
        properties.pop(key, None)
    return properties


@functools.lru_cache(maxsize=256)
def _entity_kind(schema: str) -> str | None:
    """product / transaction / checkout_step for the e-commerce plugin's entities, else None."""
    parts = iglu_parts(schema)
    if parts is None or parts[0] != ECOMMERCE_VENDOR or parts[1] not in _ENTITIES:
        return None
    return parts[1]


def _ecommerce_entities(contexts: Any) -> tuple[list[dict], dict | None, dict | None]:
    """The e-commerce entities: the products, the first transaction and checkout step."""
    products: list[dict] = []
    transaction = step = None
    data = contexts.get("data") if isinstance(contexts, dict) else None
    for entity in data if isinstance(data, list) else ():
        if not isinstance(entity, dict):
            continue
        schema, entity_data = entity.get("schema"), entity.get("data")
        if type(schema) is not str or not isinstance(entity_data, dict):
            continue
        kind = _entity_kind(schema)
        if kind == "product":
            products.append(entity_data)
        elif kind == "transaction" and transaction is None:
            transaction = entity_data
        elif kind == "checkout_step" and step is None:
            step = entity_data
    return products, transaction, step


def _ecommerce_action_into(
    payload: dict[str, Any], action: str, contexts: Any, properties: dict
) -> None:
    """The e-commerce plugin's actions with their product / transaction entities (`payload`
    has the action's event_type). A checkout step other than the first is a custom
    `checkout_step` event: the funnel counts one start."""
    products, transaction, step = _ecommerce_entities(contexts)
    if action == "checkout_step" and step is not None and step.get("step") not in (None, 1):
        payload["event_type"] = "checkout_step"
    event_type = payload["event_type"]
    if event_type in _PRODUCT_TYPES and products:
        products = _first_product_into(payload, products, event_type)
    if products:
        properties["products"] = products
    if event_type == "purchase" and transaction is not None:
        get = transaction.get
        _columns_into(
            payload,
            order_id=text_or_none(get("transaction_id")),
            revenue=money_or_none(get("revenue")),
            currency=currency_or_none(get("currency")),
        )


def _first_product_into(payload: dict[str, Any], products: list[dict], event_type: str) -> list:
    """The first product's fields into their columns; returns the products as properties
    keep them: the first without the fields that filled a column (none at all when that
    leaves nothing). Written out, as it runs for most e-commerce events."""
    first = products[0]
    get = first.get
    taken = 0
    # text_or_none's answers, its common case (non-empty text) first
    value = get("id")
    if value is not None:
        if type(value) is not str or not value:
            value = text_or_none(value)
        if value is not None:
            payload["product_id"] = value
            taken += 1
    value = get("category")
    if value is not None:
        if type(value) is not str or not value:
            value = text_or_none(value)
        if value is not None:
            payload["category"] = value
            taken += 1
    value = get("currency")
    if value is not None:
        value = currency_or_none(value)
        if value is not None:
            payload["currency"] = value
            taken += 1
    value = get("price")
    if value is not None:
        payload["price"] = money_or_none(value)  # None only for None
        taken += 1
    value = get("quantity")
    if value is not None:
        payload["quantity"] = quantity_or_none(value)  # None only for None
        taken += 1
    elif event_type != "product_view":
        payload["quantity"] = 1
    if taken == len(first) and len(products) == 1:  # every field went to a column
        return []
    rest = {
        key: value
        for key, value in first.items()
        if value is None or key not in _PRODUCT_COLUMNS or _PRODUCT_COLUMNS[key] not in payload
    }
    return [rest, *products[1:]]


_PRODUCT_COLUMNS = {
    "id": "product_id",
    "category": "category",
    "currency": "currency",
    "price": "price",
    "quantity": "quantity",
}
