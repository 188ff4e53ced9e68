"""The ingestion benchmark's event mixes, as our events (benchmarks/ingest.py).

- `light`: the mix since issue 2: page and product views and carts, one in six events with
  two properties, all timestamped "now".
- `realistic` (issue 11, "Speed on real traffic"): per 100 events 4 purchases (a unique order
  id, revenue, two products), 10 searches, 30 product views, 8 adds, 2 removals, 5 checkout
  starts and 41 page views; every event with a few properties, timestamps spread over the last
  ten minutes.

The placeholders `@ID@` (event id), `@TS@` (event time) and `@OR@` (order id) are filled per
event by the body makers (`_ingest_bodies.py`); `offset_s` says how long before "now" the event
happened. The protocol bodies (`_ingest_shapes.py`) are built from
these very events.
"""

from __future__ import annotations

COUNTRIES = ("US", "DE", "GB", "FR", "NL", "SE", "JP", "BR", "IN", "CA")
DEVICES = ("desktop", "mobile", "tablet")
CATEGORIES = ("laptops", "phones", "audio", "cameras", "books", "garden", "toys")
QUERIES = ("usb c cable", "running shoes", "4k monitor", "coffee grinder", "tent 2 person")
CAMPAIGNS = ("spring", "newsletter", "retargeting", "")
REALISTIC_CYCLE = 100  # the realistic mix repeats every 100 events (exact proportions)


def _base(index: int) -> dict:
    return {
        "event_id": "@ID@",
        "event_type": "page_view",
        "timestamp": "@TS@",
        "user_id": f"user_{index % 5000}",
        "session_id": f"session_{index % 20000}",
        "page_url": f"/products/item-{index % 300}",
        "referrer": "https://www.example.com/",
        "device_type": DEVICES[index % 3],
        "country": COUNTRIES[index % len(COUNTRIES)],
    }


def light_event(index: int) -> dict:
    """The light mix (issue 2's): a third of the events carry product and price fields."""
    kind = index % 6
    event = _base(index)
    if kind in (1, 2):
        event.update(
            event_type="product_view",
            product_id=f"sku_{index % 300}",
            category="laptops",
            price=999.99,
            currency="USD",
        )
    elif kind == 3:
        event.update(
            event_type="add_to_cart",
            product_id=f"sku_{index % 300}",
            price=19.5,
            quantity=2,
            currency="EUR",
            properties={"campaign": "spring", "ab": {"variant": "b"}},
        )
    return event


def _realistic_type(index: int) -> str:
    slot = index % REALISTIC_CYCLE
    for bound, name in (
        (4, "purchase"),
        (14, "search"),
        (44, "product_view"),
        (52, "add_to_cart"),
        (54, "remove_from_cart"),
        (59, "checkout_start"),
    ):
        if slot < bound:
            return name
    return "page_view"


def _product(index: int) -> dict:
    return {
        "product_id": f"sku_{index % 300}",
        "category": CATEGORIES[index % len(CATEGORIES)],
        "price": round(4.99 + (index % 300) * 3.17, 2),
        "currency": "EUR" if index % 4 == 0 else "USD",
    }


def realistic_event(index: int) -> dict:
    """One event of the realistic mix (see the module docstring)."""
    event = _base(index)
    event_type = _realistic_type(index)
    event["event_type"] = event_type
    properties: dict = {
        "title": f"Item {index % 300} | Shop",
        "logged_in": index % 3 != 0,
        "ab_variant": "b" if index % 2 else "a",
    }
    campaign = CAMPAIGNS[index % len(CAMPAIGNS)]
    if campaign:
        properties["utm_campaign"] = campaign
    product = _product(index)
    if event_type == "product_view":
        event.update(product)
    elif event_type in ("add_to_cart", "remove_from_cart"):
        event.update(product, quantity=1 + index % 3)
    elif event_type == "search":
        event["search_query"] = QUERIES[index % len(QUERIES)]
        event["page_url"] = "/search"
        properties["results"] = 7 + index % 40
    elif event_type == "checkout_start":
        event.update(currency=product["currency"], revenue=round(product["price"] * 2, 2))
        event["page_url"] = "/checkout"
    elif event_type == "purchase":
        second = _product(index + 7)
        revenue = round(product["price"] + 2 * second["price"], 2)
        event.update(order_id="@OR@", revenue=revenue, currency="USD")
        event["page_url"] = "/checkout/thanks"
        properties["products"] = [
            {"product_id": product["product_id"], "price": product["price"], "quantity": 1},
            {"product_id": second["product_id"], "price": second["price"], "quantity": 2},
        ]
        properties["coupon"] = "WELCOME10" if index % 5 == 0 else None
    event["properties"] = properties
    return event


def realistic_offset_s(index: int) -> int:
    """How many seconds before "now" a realistic event happened: spread over ten minutes."""
    return 30 + (index * 7919) % 570


MIXES = {"light": light_event, "realistic": realistic_event}
OFFSETS = {"light": lambda index: 30, "realistic": realistic_offset_s}
