"""Bad times, per-type rules, read limits and bounds on what is kept, through the site's WSGI
application on both request paths (fast path on and off: `ingest_client`), on PostgreSQL.
Bodies and fields: test_bad_input.py."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from events.models import Event, RejectedEvent
from tests.factories import event_payload, purchase_payload
from tests.helpers import assert_kept, assert_refused, error_pairs, nested

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres", "dev_mode")]

SINGLE, BATCH = "/events", "/events/batch"


# ----------------------------------------------------------------------------- time
def test_naive_and_offset_timestamps_are_stored_in_utc(ingest_client):
    """Naive means UTC; an offset is converted; both end up 10:30 UTC."""
    naive = event_payload(timestamp="2024-01-15T10:30:00")
    offset = event_payload(timestamp="2024-01-15T12:30:00+02:00")
    zulu = event_payload(timestamp="2024-01-15T10:30:00Z")
    for payload in (naive, offset, zulu):
        assert ingest_client.post_json(SINGLE, payload).status_code == 201
    expected = dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.UTC)
    for event in Event.objects.all():
        assert event.timestamp == expected
        assert event.client_timestamp == expected


def test_timestamps_more_than_5_minutes_ahead_are_refused(ingest_client):
    """Up to 5 minutes of client clock drift is fine; more is 400 not_in_future."""
    soon = (timezone.now() + dt.timedelta(minutes=4)).isoformat()
    late = (timezone.now() + dt.timedelta(minutes=6)).isoformat()
    assert ingest_client.post_json(SINGLE, event_payload(timestamp=soon)).status_code == 201
    body = assert_refused(
        ingest_client.post_json(SINGLE, event_payload(timestamp=late)),
        400,
        "timestamp",
        "not_in_future",
    )
    assert_kept(body, "timestamp", "not_in_future")


def test_sent_at_corrects_client_clock_skew(ingest_client):
    """timestamp = received_at - (sent_at - timestamp); the raw timestamp is kept.

    The client's clock runs an hour fast: its event happened 10 s before it sent it."""
    client_now = timezone.now() + dt.timedelta(hours=1)
    raw_timestamp = client_now - dt.timedelta(seconds=10)
    payload = event_payload(timestamp=raw_timestamp.isoformat(), sent_at=client_now.isoformat())
    before = timezone.now()
    assert ingest_client.post_json(SINGLE, payload).status_code == 201
    event = Event.objects.get()
    assert event.client_timestamp == raw_timestamp
    assert event.timestamp == event.received_at - dt.timedelta(seconds=10)
    assert before - dt.timedelta(seconds=11) <= event.timestamp <= timezone.now()
    assert (event.properties, event.warnings, event.referrer) == ({}, [], "")  # defaults


@pytest.mark.parametrize("timestamp", ["2024-13-01T00:00:00Z", "9999-12-31T23:59:59-05:00", ""])
def test_impossible_timestamps_are_400(ingest_client, timestamp):
    body = assert_refused(
        ingest_client.post_json(SINGLE, event_payload(timestamp=timestamp)),
        400,
        "timestamp",
        "iso8601",
    )
    assert_kept(body, "timestamp", "iso8601")


# ----------------------------------------------------------------------------- per type
@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            purchase_payload(order_id="", revenue=None),
            {("order_id", "required"), ("revenue", "required")},
            id="purchase-without-order-and-revenue",
        ),
        pytest.param(
            event_payload(event_type="add_to_cart", quantity=1),
            {("product_id", "required")},
            id="cart-without-product",
        ),
        pytest.param(
            event_payload(event_type="add_to_cart", product_id="sku_1"),
            {("quantity", "required")},
            id="cart-without-quantity",
        ),
        pytest.param(
            event_payload(event_type="add_to_cart", product_id="sku_1", quantity=0),
            {("quantity", "range")},
            id="cart-quantity-0",
        ),
        pytest.param(
            event_payload(event_type="add_to_cart", product_id="sku_1", quantity=-2),
            {("quantity", "range")},
            id="cart-quantity-negative",
        ),
        pytest.param(
            event_payload(event_type="search"), {("search_query", "required")}, id="search"
        ),
    ],
)
def test_required_fields_per_event_type(ingest_client, payload, expected):
    """purchase needs order_id and revenue; add_to_cart needs product_id and quantity > 0."""
    response = ingest_client.post_json(SINGLE, payload)
    assert response.status_code == 400, response.content
    assert error_pairs(response.json()) == expected


def test_complete_purchase_and_cart_events_are_accepted(ingest_client):
    cart = event_payload(event_type="add_to_cart", product_id="sku_1", quantity=2, price=9.99)
    for payload in (purchase_payload(), cart):
        assert ingest_client.post_json(SINGLE, payload).status_code == 201


# ----------------------------------------------------------------------------- reads
@pytest.mark.parametrize("limit", ["0", "1001", "abc", "-1", "1.5", "1e3"])
def test_recent_limit_out_of_bounds_is_400(ingest_client, limit):
    """limit must be an integer 1..1000."""
    response = ingest_client.get(f"/events/recent?limit={limit}")
    assert_refused(response, 400, "limit", response.json()["errors"][0]["rule"])
    assert response.json()["errors"][0]["field"] == "limit"


@pytest.mark.parametrize("limit", ["1", "1000"])
def test_recent_limit_bounds_are_inclusive(ingest_client, limit):
    ingest_client.post_json(BATCH, {"events": [event_payload() for _ in range(3)]})
    response = ingest_client.get(f"/events/recent?limit={limit}")
    assert response.status_code == 200
    assert len(response.json()["events"]) == min(int(limit), 3)


# ----------------------------------------------------------------------------- bounds
def test_kept_raw_payload_is_bounded_by_setting(ingest_client, settings):
    """The rejected row keeps at most INGEST_REJECTED_PAYLOAD_MAX_BYTES and says it was cut."""
    settings.INGEST_REJECTED_PAYLOAD_MAX_BYTES = 1000
    payload = event_payload(country="ZZ", page_url="/" + "x" * 5000)
    body = assert_refused(ingest_client.post_json(SINGLE, payload), 400, "country", "format")
    rejected = assert_kept(body, "country", "format")
    assert rejected.raw_truncated is True
    assert len(rejected.raw_payload.encode()) <= 1000


def test_a_bad_batch_never_loses_the_good_events(ingest_client):
    """Mixed garbage around good events: every good one stored, every bad one kept."""
    goods = [event_payload() for _ in range(5)]
    bads = [
        {"event_id": "x"},
        event_payload(country="ZZ"),
        event_payload(properties=nested(8)),
        42,
        event_payload(user_id="a\x00b"),
    ]
    events = [item for pair in zip(goods, bads, strict=True) for item in pair]
    response = ingest_client.post_json(BATCH, {"events": events})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"], body["duplicates"]) == (5, 5, 0)
    assert Event.objects.count() == 5
    assert RejectedEvent.objects.count() == 5
    stored = {str(e) for e in Event.objects.values_list("event_id", flat=True)}
    assert stored == {good["event_id"] for good in goods}
