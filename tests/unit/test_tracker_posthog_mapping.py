"""PostHog capture messages to our events, without a database: the bodies the SDKs send, each
mapped field, identity calls, and messages with missing and unexpected fields."""

from __future__ import annotations

import pytest

from trackers.mapping import IdentityCall, MappedEvent
from trackers.posthog import PosthogBodyError, posthog_body_messages, posthog_message_map

UUID = "0190a3e6-8c51-7c39-a3f1-2c8b4e0f5a61"


def message(**overrides):
    base = {
        "event": "$pageview",
        "distinct_id": "user-1",
        "uuid": UUID,
        "timestamp": "2026-01-05T10:00:00+00:00",
        "properties": {
            "$current_url": "https://shop.example/p/1",
            "$session_id": "sess-1",
            "$device_type": "Mobile",
            "$referrer": "https://search.example/",
            "$lib": "posthog-python",
            "$python_version": "3.11",
            "plan": "pro",
        },
    }
    return base | overrides


def test_python_batch_body_gives_messages_key_and_sent_at():
    """posthog-python posts {"api_key", "batch", "sent_at"} to /batch/."""
    body = {"api_key": "phc_1", "batch": [message()], "sent_at": "2026-01-05T10:00:05+00:00"}
    messages, key, sent_at = posthog_body_messages(body)
    assert (len(messages), key, sent_at) == (1, "phc_1", "2026-01-05T10:00:05+00:00")


@pytest.mark.parametrize(
    "body",
    [
        [message(properties={"token": "phc_js"})],
        message(properties={"token": "phc_js"}),
        {"data": [message(properties={"token": "phc_js"})]},
        {"token": "phc_js", "batch": [message()]},
    ],
    ids=["js-list", "js-single", "legacy-data", "token-field"],
)
def test_js_bodies_carry_the_key_as_token(body):
    """posthog-js sends a list or one message with the key in properties.token."""
    messages, key, _ = posthog_body_messages(body)
    assert key == "phc_js" and len(messages) == 1


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"batch": "x"}, "batch", "list"),
        ({"api_key": "k"}, "batch", "required"),
        ("text", "body", "object"),
        (3, "body", "object"),
    ],
)
def test_bodies_that_are_no_capture_body_are_refused_by_name(body, field, rule):
    with pytest.raises(PosthogBodyError) as refused:
        posthog_body_messages(body)
    assert (refused.value.field, refused.value.rule) == (field, rule)


def test_pageview_maps_its_fields():
    """$pageview is page_view; $current_url, $session_id, $device_type, $referrer mapped; the
    customer's properties kept, SDK noise left to the original message."""
    mapped = posthog_message_map(message(), sent_at="2026-01-05T10:00:05+00:00")
    assert isinstance(mapped, MappedEvent)
    payload = mapped.payload
    assert payload["event_id"] == UUID == mapped.foreign_id
    assert payload["event_type"] == "page_view"
    assert payload["user_id"] == "user-1"
    assert payload["session_id"] == "sess-1"
    assert payload["device_type"] == "mobile"
    assert payload["page_url"] == "https://shop.example/p/1"
    assert payload["referrer"] == "https://search.example/"
    assert payload["sent_at"] == "2026-01-05T10:00:05+00:00"
    assert payload["properties"] == {"$lib": "posthog-python", "plan": "pro"}
    assert mapped.original["properties"]["$python_version"] == "3.11"


def test_custom_event_keeps_its_name_and_missing_fields_stay_absent():
    """A custom name passes through; no session, device or country: derived on the server."""
    mapped = posthog_message_map({"event": "newsletter_signup", "distinct_id": "u", "uuid": UUID})
    payload = mapped.payload
    assert payload["event_type"] == "newsletter_signup"
    for absent in ("session_id", "device_type", "country", "page_url", "sent_at"):
        assert absent not in payload
    assert payload["properties"] == {}


def test_anonymous_js_event_uses_the_device_id_as_anonymous_id():
    """Before identify, posthog-js's distinct_id is its $device_id: an anonymous id, no user."""
    props = {"$device_id": "dev-9", "$session_id": "s"}
    payload = posthog_message_map(message(distinct_id="dev-9", properties=props)).payload
    assert payload["anonymous_id"] == "dev-9" and "user_id" not in payload
    identified = posthog_message_map(message(distinct_id="user-7", properties=props)).payload
    assert (identified["user_id"], identified["anonymous_id"]) == ("user-7", "dev-9")


def test_device_types_outside_ours_are_other_and_direct_referrer_is_none():
    props = {"$device_type": "Console", "$referrer": "$direct"}
    payload = posthog_message_map(message(properties=props)).payload
    assert payload["device_type"] == "other" and "referrer" not in payload


def test_ignore_sent_at_turns_skew_correction_off():
    props = {"$ignore_sent_at": True}
    mapped = posthog_message_map(message(properties=props), sent_at="2026-01-05T10:00:05Z")
    assert "sent_at" not in mapped.payload


def test_ecommerce_spec_names_map_to_our_types_and_fields():
    """PostHog's e-commerce spec (Segment's names) drives our seven types."""
    order = posthog_message_map(
        message(
            event="Order Completed",
            properties={"order_id": "o-1", "revenue": 25.5, "currency": "EUR", "products": []},
        )
    ).payload
    assert (order["event_type"], order["order_id"], order["revenue"]) == ("purchase", "o-1", 25.5)
    assert order["currency"] == "EUR" and "product_id" not in order
    added = posthog_message_map(
        message(event="Product Added", properties={"products": [{"sku": "s1", "price": "9.99"}]})
    ).payload
    assert (added["event_type"], added["product_id"], added["price"]) == ("add_to_cart", "s1", 9.99)
    assert added["quantity"] == 1
    search = posthog_message_map(
        message(event="Products Searched", properties={"query": "red shoes"})
    ).payload
    assert (search["event_type"], search["search_query"]) == ("search", "red shoes")


@pytest.mark.parametrize(
    ("event", "properties", "left"),
    [
        ("Products Searched", {"query": "red shoes", "results": 4}, {"results": 4}),
        (
            "Product Viewed",
            {"sku": "s1", "product_id": None, "price": 9.99, "category": "c", "currency": "EUR"},
            {"product_id": None},
        ),
        (
            "Product Added",
            {"product_id": "p1", "quantity": "2", "currency": ["EUR"], "coupon": "X"},
            {"currency": ["EUR"], "coupon": "X"},
        ),
        (
            "Order Completed",
            {"order_id": "o-1", "total": 25.5, "value": 20, "currency": "EUR", "products": []},
            {"value": 20, "products": []},
        ),
    ],
)
def test_properties_that_became_columns_leave_properties(event, properties, left):
    """A property mapped to a column is not kept twice; the others stay (ADR 0042). A
    property that gave no column (null, or not text) stays, and the original is whole."""
    mapped = posthog_message_map(message(event=event, properties=dict(properties)))
    assert mapped.payload["properties"] == left
    assert mapped.original["properties"] == properties


def test_a_product_taken_from_products_leaves_products_whole():
    """Without a top-level product, the first of `products[]` feeds the columns and stays in
    `products`; top-level fields that did not feed them stay too."""
    products = [{"sku": "s1", "price": "9.99", "category": "c"}]
    payload = posthog_message_map(
        message(event="Product Added", properties={"products": products, "price": 5})
    ).payload
    assert (payload["product_id"], payload["price"], payload["category"]) == ("s1", 9.99, "c")
    assert payload["properties"] == {"products": products, "price": 5}


def test_identify_with_an_anonymous_id_is_an_alias_with_traits():
    msg = message(
        event="$identify",
        distinct_id="user-1",
        properties={"$anon_distinct_id": "anon-1", "$set": {"email": "a@example.com"}},
    )
    call = posthog_message_map(msg)
    assert isinstance(call, IdentityCall)
    assert (call.kind, call.user_id, call.anonymous_id) == ("alias", "user-1", "anon-1")
    assert call.traits == {"email": "a@example.com"}


def test_create_alias_and_set_are_identity_calls():
    """posthog-python's alias(previous_id, distinct_id) sends distinct_id=previous, alias=new."""
    alias = posthog_message_map(
        message(event="$create_alias", distinct_id="anon-2", properties={"alias": "user-2"})
    )
    assert (alias.kind, alias.user_id, alias.anonymous_id) == ("alias", "user-2", "anon-2")
    traits = posthog_message_map(
        {"event": "$set", "distinct_id": "user-3", "$set": {"plan": "pro"}, "uuid": UUID}
    )
    assert (traits.kind, traits.user_id, traits.traits) == ("identify", "user-3", {"plan": "pro"})


@pytest.mark.parametrize(
    "broken",
    [
        "not an object",
        {"event": "$pageview"},  # no distinct_id, no uuid, no timestamp
        {"event": 12, "distinct_id": ["x"], "properties": "nope", "uuid": 5},
        {"event": "$identify", "distinct_id": None},  # identity call without an id
    ],
)
def test_broken_messages_still_map_to_an_event_for_validation_to_refuse(broken):
    """Nothing raises: a message too broken to read maps to an event that validation refuses
    with the field named (and quarantines with its original)."""
    mapped = posthog_message_map(broken)
    assert isinstance(mapped, MappedEvent)
    assert mapped.original == broken
    assert "user_id" not in mapped.payload


@pytest.mark.parametrize("name", [["Order Completed"], {"name": "$pageview"}])
def test_an_event_name_that_is_no_text_is_passed_on_for_validation_to_refuse(name):
    """A list or object as the name (unhashable) maps without raising, kept as sent, so the
    schema layer refuses it naming event_type (4xx or quarantine, never a 500)."""
    mapped = posthog_message_map({"event": name, "distinct_id": "u", "properties": {"x": 1}})
    assert isinstance(mapped, MappedEvent)
    assert mapped.payload["event_type"] == name and "order_id" not in mapped.payload


def test_wrongly_typed_optional_fields_are_absent_not_errors():
    props = {"$session_id": {"x": 1}, "$current_url": None, "$device_type": 3}
    payload = posthog_message_map(message(properties=props)).payload
    assert "session_id" not in payload and "page_url" not in payload
    assert payload["device_type"] == "other"


@pytest.mark.parametrize(
    "properties",
    [
        {"product_id": "p1", "price": 5, "currency": "usd"},
        {"products": [{"product_id": "p1", "price": 5}], "currency": "Usd"},
    ],
    ids=["top-level", "products"],
)
def test_currency_codes_are_taken_in_upper_case_as_segment_takes_them(properties):
    """`"currency": "usd"` is common in e-commerce calls: mapped to USD, not quarantined."""
    payload = posthog_message_map(message(event="Product Viewed", properties=properties)).payload
    assert payload["currency"] == "USD"
    assert "currency" not in payload["properties"]
