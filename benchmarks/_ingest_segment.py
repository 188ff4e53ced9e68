"""The ingestion benchmark's Segment bodies: each event of `event_template` as the Segment message
that translates into that very event (benchmarks/ingest.py's `segment` phase posts them to
/v1/batch, so its rate compares with /events/batch on the same events)."""

from __future__ import annotations

ECOMMERCE_NAMES = {"product_view": "Product Viewed", "add_to_cart": "Product Added"}
_PRODUCT_FIELDS = ("product_id", "category", "price", "quantity", "currency")


def segment_message(event: dict) -> dict:
    """One of our events as a Segment page or track message (messageId before timestamp: the
    body maker splits the JSON text at those two placeholders, in that order)."""
    message: dict = {"messageId": event["event_id"], "timestamp": event["timestamp"]}
    properties = {"url": event["page_url"], "referrer": event["referrer"]}
    if event["event_type"] == "page_view":
        message["type"] = "page"
    else:
        message |= {"type": "track", "event": ECOMMERCE_NAMES[event["event_type"]]}
        properties |= {name: event[name] for name in _PRODUCT_FIELDS if name in event}
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
