"""Segment messages into our wire format (trackers.segment.mapping), one mapping at a time,
with missing and unexpected fields."""

import datetime as dt

import pytest

from trackers.common import Translated
from trackers.event_ids import event_id_for
from trackers.segment.identity import IdentityCall
from trackers.segment.mapping import MESSAGE_MAX_BYTES
from trackers.segment.messages import message_translate

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def translate(message, call=None, batch_sent_at=None):
    return message_translate(
        message, call=call, key_id=7, batch_sent_at=batch_sent_at, received_at=NOW
    )


def track(event, **properties):
    return {
        "type": "track",
        "event": event,
        "userId": "u1",
        "messageId": "m1",
        "timestamp": "2026-01-02T03:00:00Z",
        "properties": properties,
    }


def test_track_keeps_ids_times_and_properties():
    """A custom event: name as sent, ids, the event time, the batch's sentAt, properties."""
    result = translate(
        {**track("Newsletter Signup", plan="pro"), "anonymousId": "a1"},
        batch_sent_at="2026-01-02T03:00:10Z",
    )
    assert isinstance(result, Translated) and result.error is None
    assert result.payload == {
        "event_id": event_id_for(source="segment", key_id=7, message_id="m1", message={}),
        "event_type": "Newsletter Signup",
        "user_id": "u1",
        "anonymous_id": "a1",
        "timestamp": "2026-01-02T03:00:00Z",
        "sent_at": "2026-01-02T03:00:10Z",
        "properties": {"plan": "pro"},
    }
    assert result.original["event"] == "Newsletter Signup"


def test_original_timestamp_wins_and_message_sent_at_beats_the_batch():
    message = {
        **track("X"),
        "originalTimestamp": "2026-01-02T02:00:00Z",
        "sentAt": "2026-01-02T02:00:05Z",
    }
    payload = translate(message, batch_sent_at="2026-01-02T09:00:00Z").payload
    assert payload["timestamp"] == "2026-01-02T02:00:00Z"
    assert payload["sent_at"] == "2026-01-02T02:00:05Z"


def test_without_any_time_the_event_happened_on_arrival():
    message = track("X")
    del message["timestamp"]
    payload = translate(message).payload
    assert payload["timestamp"] == NOW.isoformat()
    assert "sent_at" not in payload


@pytest.mark.parametrize(
    ("event", "properties", "expected", "left"),
    [
        (
            "Products Searched",
            {"query": "blue shoes", "results": 3},
            {"search_query": "blue shoes"},
            {"results": 3},
        ),
        (
            "Product Viewed",
            {"product_id": "p1", "category": "Shoes", "price": 19.999, "currency": "usd"},
            {"product_id": "p1", "category": "Shoes", "price": "20.00", "currency": "USD"},
            None,
        ),
        (
            "Product Added",
            {"sku": "s-9", "id": "i-9", "quantity": 2.0},
            {"product_id": "s-9", "quantity": 2},
            {"id": "i-9"},
        ),
        ("Product Removed", {"id": 12}, {"product_id": "12", "quantity": 1}, None),
        (
            "Checkout Started",
            {"order_id": "o1", "value": 30, "currency": "EUR", "coupon": "X"},
            {"order_id": "o1", "revenue": "30.00", "currency": "EUR"},
            {"coupon": "X"},
        ),
        (
            "Order Completed",
            {"order_id": "o2", "total": 99.5, "value": 98, "currency": 5},
            {"order_id": "o2", "revenue": "99.50"},
            {"value": 98, "currency": 5},
        ),
    ],
)
def test_ecommerce_spec_v2_names_become_our_types(event, properties, expected, left):
    """Spec v2 names map to the seven types, their fields to our columns; a property that
    became a column leaves `properties`, the others stay (ADR 0042)."""
    result = translate(track(event, **properties))
    payload = result.payload
    for name, value in expected.items():
        assert payload[name] == value, name
    assert payload.get("properties") == left
    assert result.original["properties"] == properties  # the message is kept whole


def test_ecommerce_fields_without_a_column_value_stay_in_properties():
    """A spec field that gave no column (empty, or not text where text is needed) stays."""
    payload = translate(track("Products Searched", query="")).payload
    assert "search_query" not in payload
    assert payload["properties"] == {"query": ""}
    payload = translate(track("Product Viewed", sku="s1", currency=["usd"], category=None)).payload
    assert payload["product_id"] == "s1" and "currency" not in payload
    assert payload["properties"] == {"currency": ["usd"], "category": None}


def test_order_completed_keeps_products_in_properties():
    products = [{"product_id": "p1", "price": 10, "quantity": 1}]
    payload = translate(
        track("Order Completed", order_id="o", revenue=10, products=products)
    ).payload
    assert payload["event_type"] == "purchase"
    assert payload["properties"]["products"] == products


def test_ecommerce_event_missing_its_fields_is_left_for_validation():
    """No order_id or revenue: the payload lacks them and the ingestion service refuses it."""
    payload = translate(track("Order Completed")).payload
    assert payload["event_type"] == "purchase"
    assert "order_id" not in payload and "revenue" not in payload


def test_page_maps_url_referrer_and_context():
    message = {
        "type": "page",
        "name": "Home",
        "anonymousId": "a1",
        "messageId": "m2",
        "properties": {"url": "https://shop.example/", "title": "Shop"},
        "context": {
            "page": {"url": "https://ignored.example/", "referrer": "https://google.com/"},
            "device": {"type": "ios"},
            "campaign": {"name": "spring", "source": "newsletter", "medium": "email"},
            "locale": "de-DE",
            "sessionId": 1700000000,
            "userAgent": "Mozilla/5.0",
            "ip": "203.0.113.9",
        },
    }
    payload = translate(message).payload
    assert payload["event_type"] == "page_view"
    assert payload["page_url"] == "https://shop.example/"
    assert payload["referrer"] == "https://google.com/"
    assert payload["device_type"] == "mobile"
    assert payload["session_id"] == "1700000000"
    assert payload["properties"] == {
        "title": "Shop",
        "name": "Home",
        "utm_campaign": "spring",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "locale": "de-DE",
    }


def test_screen_is_a_page_view_with_its_name():
    payload = translate({"type": "screen", "name": "Cart", "userId": "u"}).payload
    assert payload["event_type"] == "page_view"
    assert payload["properties"] == {"name": "Cart"}


def test_group_is_a_custom_event_with_group_id_and_traits():
    message = {"type": "group", "userId": "u", "groupId": "g1", "traits": {"plan": "x"}}
    payload = translate(message).payload
    assert payload["event_type"] == "group"
    assert payload["properties"] == {"group_id": "g1", "plan": "x"}


def test_the_path_names_the_call_of_a_single_message():
    """/v1/track posts a message without `type`."""
    message = track("X")
    del message["type"]
    assert translate(message, call="track").payload["event_type"] == "X"


def test_unexpected_fields_are_ignored_but_kept_in_the_original():
    message = {**track("X"), "integrations": {"All": True}, "_metadata": {"x": 1}, "extra": 1}
    result = translate(message)
    assert "integrations" not in result.payload and "extra" not in result.payload
    assert result.original["extra"] == 1


@pytest.mark.parametrize(
    ("message", "field", "rule"),
    [
        ("not an object", "message", "object"),
        ({"type": "boom", "userId": "u"}, "type", "allowed_values"),
        ({"type": ["track"], "userId": "u"}, "type", "allowed_values"),
        ({"userId": "u", "event": "X"}, "type", "allowed_values"),
        ({"type": "track", "userId": "u"}, "event", "required"),
        ({"type": "track", "userId": "u", "event": 5}, "event", "required"),
        ({"type": "track", "event": "X"}, "userId", "required"),
        ({"type": "track", "event": "X", "userId": {"a": 1}}, "userId", "string"),
        (
            {"type": "track", "event": "X", "userId": "u", "p": "x" * MESSAGE_MAX_BYTES},
            "message",
            "max_size",
        ),
        ({"type": "alias", "userId": "u"}, "previousId", "required"),
        ({"type": "identify"}, "userId", "required"),
        ({"type": "identify", "userId": "u", "traits": [1]}, "traits", "object"),
        ({"type": "identify", "userId": "u", "context": {"traits": "x"}}, "traits", "object"),
        ({"type": "track", "userId": "u", "event": "X", "properties": [1]}, "properties", "object"),
        ({"type": "track", "userId": "u", "event": "X", "context": "c"}, "context", "object"),
        ({"type": "track", "userId": "u", "event": "X", "timestamp": 1}, "timestamp", "iso8601"),
        ({"type": "track", "userId": "u", "event": "X", "sentAt": {}}, "sentAt", "iso8601"),
        ({"type": "track", "userId": 1.5, "event": "X"}, "userId", "string"),
        ({"type": "track", "userId": True, "event": "X"}, "userId", "string"),
        ({"type": "group", "userId": "u"}, "groupId", "required"),
    ],
)
def test_untranslatable_messages_name_field_and_rule(message, field, rule):
    """What cannot become an event is quarantined with the original and a reason."""
    result = translate(message)
    assert isinstance(result, Translated)
    assert (result.error.field, result.error.rule) == (field, rule)
    assert result.original == message and result.payload is None


def test_identify_is_an_identity_call_with_traits():
    message = {
        "type": "identify",
        "userId": 42,
        "anonymousId": "a1",
        "traits": {"email": "x@example.com"},
        "timestamp": "2026-01-02T03:00:00Z",
    }
    call = translate(message)
    assert call == IdentityCall(
        "identify",
        message,
        "42",
        "a1",
        traits={"email": "x@example.com"},
        timestamp=dt.datetime(2026, 1, 2, 3, 0, tzinfo=dt.UTC),
    )


def test_alias_links_previous_id_to_user_id_at_receipt_without_a_time():
    message = {"type": "alias", "userId": "u1", "previousId": "a1"}
    call = translate(message, batch_sent_at="2026-01-02T03:00:00Z")
    assert (call.kind, call.user_id, call.previous_id, call.timestamp) == ("alias", "u1", "a1", NOW)


def test_identity_time_is_skew_corrected_like_an_event():
    """Sent 10 s after it happened by the client's clock: 10 s before it was received."""
    message = {"type": "identify", "userId": "u", "timestamp": "2030-01-01T00:00:00Z"}
    call = translate(message, batch_sent_at="2030-01-01T00:00:10Z")
    assert call.timestamp == NOW - dt.timedelta(seconds=10)


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"userId": "x" * 129}, "userId", "max_length"),
        ({"userId": "a\x00b"}, "userId", "no_nul_bytes"),
        ({"userId": "\ud800"}, "userId", "valid_unicode"),
        ({"userId": "u", "anonymousId": "\udfff"}, "anonymousId", "valid_unicode"),
        ({"userId": "u", "timestamp": "yesterday"}, "timestamp", "iso8601"),
        ({"userId": "u", "timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", "iso8601"),
        ({"userId": "u", "timestamp": "2099-01-01T00:00:00Z"}, "timestamp", "not_in_future"),
        ({"userId": "u", "traits": {"k": "\ud800"}}, "traits", "valid_unicode"),
        ({"userId": "u", "traits": {"k": "x" * 9000}}, "traits", "max_size"),
        ({"userId": "u", "traits": {"k": "a\x00"}}, "traits", "max_size"),
    ],
)
def test_identity_calls_are_bounded_like_events(fields, field, rule):
    """Identify skips the event validator: its ids, traits and time have their own bounds."""
    result = translate({"type": "identify", **fields})
    assert isinstance(result, Translated)
    assert (result.error.field, result.error.rule) == (field, rule)


@pytest.mark.parametrize(
    ("country", "expected"),
    [("United States", "US"), ("de", "DE"), ("Germany", "DE"), ("Atlantis", None), (5, None)],
)
def test_location_country_by_code_or_name(country, expected):
    """A country the message names is kept; otherwise it is derived from the IP."""
    message = {**track("X"), "context": {"location": {"country": country}}}
    assert translate(message).payload.get("country") == expected


def test_user_agent_and_ip_of_the_message_travel_with_it():
    """A server-side SDK forwards the browser's User-Agent and IP: derivation reads those."""
    message = {**track("X"), "context": {"userAgent": "Mozilla/5.0", "ip": "203.0.113.9"}}
    result = translate(message)
    assert (result.user_agent, result.ip) == ("Mozilla/5.0", "203.0.113.9")
    assert "userAgent" not in result.payload.get("properties", {})


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("properties", "object"),
        ("context", "object"),
        ("traits", "object"),
        ("timestamp", "iso8601"),
        ("originalTimestamp", "iso8601"),
        ("sentAt", "iso8601"),
        ("userId", "string"),
        ("anonymousId", "string"),
        ("previousId", "string"),
        ("groupId", "string"),
    ],
)
def test_each_typed_field_of_the_wrong_type_is_named(field, rule):
    """A field a mapping reads, sent with the wrong JSON type, refuses the message naming that
    field and its rule (whichever call reads it)."""
    message = {"type": "track", "event": "X", "userId": "u", field: [1]}
    result = translate(message)
    assert result.error is not None
    assert (result.error.field, result.error.rule) == (field, rule)
