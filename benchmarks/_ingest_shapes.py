"""The ingestion benchmark's protocol bodies: each event of a mix (`_ingest_mix.py`) as the
message that the protocol's SDK sends and that translates back into that very event, so that
`/v1/batch` (Segment), `/batch/` (PostHog) and tp2 (Snowplow) compare with `/events/batch` on the
same events (benchmarks/ingest.py). Placeholders: `@ID@`/`@UU@` the id (hex, or a dashed UUID
as the SDK writes it), `@TS@`/`@MS@` the event time (ISO 8601, or epoch milliseconds), `@OR@`
the order id; `_ingest_bodies.BodyMaker` fills them per event."""

from __future__ import annotations

import base64

import orjson

ECOMMERCE_NAMES = {
    "search": "Products Searched",
    "product_view": "Product Viewed",
    "add_to_cart": "Product Added",
    "remove_from_cart": "Product Removed",
    "checkout_start": "Checkout Started",
    "purchase": "Order Completed",
}
# Our column -> the e-commerce spec v2 property that maps back onto it.
_SPEC_PROPERTIES = {
    "product_id": "product_id",
    "category": "category",
    "price": "price",
    "quantity": "quantity",
    "currency": "currency",
    "order_id": "order_id",
    "revenue": "revenue",
    "search_query": "query",
}


def segment_message(event: dict) -> dict:
    """One of our events as a Segment page or track message."""
    message: dict = {"messageId": event["event_id"], "timestamp": event["timestamp"]}
    properties = {"url": event["page_url"], "referrer": event["referrer"]}
    if event["event_type"] == "page_view":
        message["type"] = "page"
    else:
        message |= {"type": "track", "event": ECOMMERCE_NAMES[event["event_type"]]}
        properties |= {
            spec: event[ours] for ours, spec in _SPEC_PROPERTIES.items() if ours in event
        }
    properties |= event.get("properties", {})
    message |= {
        "userId": event["user_id"],
        "properties": properties,
        "context": {
            "sessionId": event["session_id"],
            "device": {"type": event["device_type"]},
            "location": {"country": event["country"]},
            "library": {"name": "analytics-python", "version": "2.4.0"},
        },
    }
    return message


ECOM = "iglu:com.snowplowanalytics.snowplow.ecommerce"
SNOWPLOW = "iglu:com.snowplowanalytics.snowplow"
PAYLOAD_DATA = f"{SNOWPLOW}/payload_data/jsonschema/1-0-4"
_PRODUCT_FIELDS = ("product_id", "category", "price", "quantity", "currency")


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def posthog_message(event: dict) -> dict:
    """One of our events as posthog-python captures it (Segment's e-commerce names, which
    PostHog documents too)."""
    properties = {
        "$current_url": event["page_url"],
        "$referrer": event["referrer"],
        "$session_id": event["session_id"],
        "$device_type": event["device_type"].title(),
        "$geoip_country_code": event["country"],
        "$lib": "posthog-python",
        **{k: event[k] for k in (*_PRODUCT_FIELDS, "order_id", "revenue") if k in event},
        **event.get("properties", {}),
    }
    if "search_query" in event:
        properties["query"] = event["search_query"]
    name = ECOMMERCE_NAMES.get(event["event_type"], "$pageview")
    return {
        "event": name,
        "distinct_id": event["user_id"],
        "uuid": "@UU@",
        "timestamp": "@TS@",
        "properties": properties,
    }


def _entity(name: str, data: dict) -> dict:
    return {"schema": f"{ECOM}/{name}/jsonschema/1-0-0", "data": data}


def snowplow_event(event: dict) -> dict:
    """One of our events as snowplow-tracker sends it: page views, the e-commerce plugin's
    actions with base64 entities, site searches. A purchase carries its entities as plain JSON
    (`co`, the tracker's encode_base64=False) so that each event gets its own order id."""
    sent = {
        "e": "pv",
        "eid": "@UU@",
        "dtm": "@MS@",
        "url": event["page_url"],
        "refr": event["referrer"],
        "uid": event["user_id"],
        "sid": event["session_id"],
        "p": {"desktop": "pc", "mobile": "mob"}.get(event["device_type"], "tv"),
        "tv": "py-1.1.0",
        "tna": "bench",
    }
    kind = event["event_type"]
    if kind == "page_view":
        return sent
    unstruct = f"{SNOWPLOW}/unstruct_event/jsonschema/1-0-0"
    contexts = f"{SNOWPLOW}/contexts/jsonschema/1-0-1"
    if kind == "search":
        search = {"schema": f"{SNOWPLOW}/site_search/jsonschema/1-0-0"}
        search["data"] = {"terms": event["search_query"].split()}
        return sent | {"e": "ue", "ue_px": _b64({"schema": unstruct, "data": search})}
    action_type = {"checkout_start": "checkout_step", "purchase": "transaction"}.get(kind, kind)
    action = {"schema": f"{ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2"}
    action["data"] = {"type": action_type}
    entities = []
    if kind in ("product_view", "add_to_cart", "remove_from_cart"):
        product = {"id": event["product_id"], "price": event["price"]}
        product |= {"currency": event["currency"], "category": event.get("category", "x")}
        if "quantity" in event:
            product["quantity"] = event["quantity"]
        entities.append(_entity("product", product))
    elif kind == "checkout_start":
        entities.append(_entity("checkout_step", {"step": 1}))
    else:  # purchase
        transaction = {"transaction_id": event["order_id"], "revenue": event["revenue"]}
        transaction |= {"currency": event["currency"], "payment_method": "card"}
        transaction["total_quantity"] = 3
        entities.append(_entity("transaction", transaction))
        for item in event.get("properties", {}).get("products", []):
            product = {"id": item["product_id"], "price": item["price"], "currency": "USD"}
            entities.append(_entity("product", product | {"quantity": item["quantity"]}))
    sent |= {"e": "ue", "ue_px": _b64({"schema": unstruct, "data": action})}
    if kind == "purchase":
        return sent | {"co": orjson.dumps({"schema": contexts, "data": entities}).decode()}
    return sent | {"cx": _b64({"schema": contexts, "data": entities})}
