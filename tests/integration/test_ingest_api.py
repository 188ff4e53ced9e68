"""The ingestion API as the original README uses it, plus idempotency and batches, through the
site's WSGI application on both request paths (fast path on and off: `ingest_client`)."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from events.models import Event, RejectedEvent
from quality.services.defaults import defaults_load
from tests.factories import event_payload
from tests.helpers import postgres_admin_connection, send_twice

pytestmark = pytest.mark.django_db

README_EVENT = {
    "event_id": "123e4567-e89b-12d3-a456-426614174000",
    "event_type": "page_view",
    "timestamp": "2024-01-15T10:30:00Z",
    "user_id": "user_12345",
    "session_id": "session_67890",
    "page_url": "/products/laptop",
    "device_type": "desktop",
    "country": "US",
}


@pytest.mark.parametrize("path", ["/events", "/events/", "/api/v1/events", "/api/v1/events/"])
def test_readme_event_is_accepted_then_reported_duplicate(dev_mode, ingest_client, path):
    """The README's example returns 201 once and 200 duplicate after, storing one row."""
    send_twice(ingest_client, path, README_EVENT)
    assert Event.objects.count() == 1


def test_batch_mixes_accepted_duplicate_and_rejected(dev_mode, ingest_client):
    """Valid events are stored even when others in the batch are bad; in-batch repeats once."""
    good = event_payload()
    bad = event_payload(country="Narnia")
    response = ingest_client.post_json(
        "/events/batch", {"events": [good, bad, good, event_payload()]}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "rejected",
        "duplicate",
        "accepted",
    ]
    assert body["results"][1]["errors"][0]["field"] == "country"
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 1)
    assert Event.objects.count() == 2
    assert RejectedEvent.objects.count() == 1


def test_ingestion_needs_a_key_outside_development(ingest_client, ingestion_key):
    """Anonymous writes are refused with 401/403; a valid key is accepted."""
    refused = ingest_client.post_json("/events", event_payload())
    assert refused.status_code in (401, 403)
    bearer = f"Bearer {ingestion_key.raw_key}"
    accepted = ingest_client.post_json("/events", event_payload(), HTTP_AUTHORIZATION=bearer)
    assert accepted.status_code == 201
    ingest_client.credentials(HTTP_X_API_KEY="ek_wrong")
    assert ingest_client.post_json("/events", event_payload()).status_code == 401


def test_stats_and_recent_match_the_readme_usage(dev_mode, ingest_client):
    for minutes in (3, 2, 1):
        timestamp = (timezone.now() - dt.timedelta(minutes=minutes)).isoformat()
        ingest_client.post_json("/events", event_payload(timestamp=timestamp))
    stats = ingest_client.get("/events/stats").json()
    assert stats["total_events"] == 3
    assert stats["events_by_type"] == {"page_view": 3}
    recent = ingest_client.get("/events/recent?limit=2").json()
    assert len(recent["events"]) == 2
    assert recent["events"][0]["timestamp"] >= recent["events"][1]["timestamp"]


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
def test_batch_results_carry_index_status_and_stored_id(
    require_postgres, dev_mode, ingest_client, prefix
):
    """Each result says what happened to the event at that index; accepted ones carry the id
    of the stored row, and a batch sent again is all duplicates with nothing new stored."""
    events = [event_payload() for _ in range(3)]
    first = ingest_client.post_json(f"{prefix}/events/batch/", {"events": events})
    assert first.status_code == 200
    assert first["Content-Type"] == "application/json"
    results = first.json()["results"]
    stored = dict(Event.objects.values_list("event_id", "id"))
    for index, (event, result) in enumerate(zip(events, results, strict=True)):
        assert result["index"] == index
        assert result["status"] == "accepted"
        assert result["event_id"] == event["event_id"]
        assert stored[uuid.UUID(event["event_id"])] == result["id"]
    again = ingest_client.post_json(f"{prefix}/events/batch", {"events": events}).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert {r["status"] for r in again["results"]} == {"duplicate"}
    assert Event.objects.count() == 3


def test_stored_event_keeps_every_field(require_postgres, dev_mode, ingest_client):
    """What goes in comes back out of the database exactly (money as exact decimals)."""
    payload = event_payload(
        event_type="purchase",
        order_id="order_1",
        revenue="1234.50",
        price=617.25,
        quantity=2,
        currency="EUR",
        product_id="sku_9",
        category="laptops",
        referrer="https://example.com/",
        properties={"coupon": "SPRING", "items": [1, 2], "nested": {"a": None}},
    )
    assert ingest_client.post_json("/events", payload).status_code == 201
    event = Event.objects.get()
    assert event.revenue == Decimal("1234.50") and event.price == Decimal("617.25")
    assert (event.quantity, event.currency, event.order_id) == (2, "EUR", "order_1")
    assert event.properties == {"coupon": "SPRING", "items": [1, 2], "nested": {"a": None}}
    assert event.warnings == []
    assert event.received_at <= timezone.now()


def test_recent_is_newest_first_and_bounded(require_postgres, dev_mode, ingest_client):
    now = timezone.now()
    events = [
        event_payload(timestamp=(now - dt.timedelta(minutes=m)).isoformat()) for m in range(12)
    ]
    ingest_client.post_json("/events/batch", {"events": events})
    recent = ingest_client.get("/events/recent?order=timestamp").json()  # by event time
    assert recent["count"] == 10  # the default limit
    stamps = [event["timestamp"] for event in recent["events"]]
    assert stamps == sorted(stamps, reverse=True)
    assert recent["events"][0]["event_id"] == events[0]["event_id"]
    assert len(ingest_client.get("/events/recent?limit=1000").json()["events"]) == 12


def test_stats_report_the_documented_fields(require_postgres, dev_mode, ingest_client):
    ingest_client.post_json(
        "/events/batch",
        {
            "events": [
                event_payload(device_type="mobile", country="DE"),
                event_payload(event_type="product_view", product_id="p1"),
                event_payload(timestamp="2024-01-01T00:00:00Z"),
            ]
        },
    )
    stats = ingest_client.get("/events/stats").json()
    assert stats["total_events"] == 3
    assert stats["events_by_type"] == {"page_view": 2, "product_view": 1}
    assert stats["events_by_device"] == {"desktop": 2, "mobile": 1}
    assert stats["events_by_country"] == {"US": 2, "DE": 1}
    assert stats["events_last_hour"] == 2
    assert stats["newest_event_timestamp"] is not None


@pytest.mark.django_db(transaction=True)
def test_a_dead_persistent_connection_is_replaced_without_an_error(
    require_postgres, dev_mode, ingest_client
):
    """After a database restart the first insert on a stale persistent connection fails; the
    insert is idempotent, so it is retried once on a fresh connection instead of a 5xx."""
    assert ingest_client.post_json("/events", event_payload()).status_code == 201
    stale_pid = connection.connection.info.backend_pid
    with postgres_admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [stale_pid])
    response = ingest_client.post_json("/events", event_payload())
    assert response.status_code == 201, response.content
    assert connection.connection.info.backend_pid != stale_pid
    assert Event.objects.count() == 2


def test_readme_event_is_accepted_with_the_default_rules_loaded(dev_mode, ingest_client):
    """In the demo the default rules are loaded: the README's 2024 event is still accepted
    (201), flagged as a backfill by the warning rule rather than quarantined."""
    defaults_load()
    response = ingest_client.post_json("/events", README_EVENT)
    assert response.status_code == 201, response.content
    assert [w["rule"] for w in response.json()["warnings"]] == ["timestamp-older-than-30-days"]
    stored = Event.objects.get(event_id=README_EVENT["event_id"])
    assert stored.warnings[0]["rule"] == "timestamp-older-than-30-days"


def test_clock_reset_timestamps_are_quarantined_by_the_default_rules(dev_mode, ingest_client):
    """A device clock reset to 1990 is garbage, not history: the default rules reject it."""
    defaults_load()
    response = ingest_client.post_json("/events", event_payload(timestamp="1990-01-01T00:00:00Z"))
    assert response.status_code == 400
    rules = {error["rule"] for error in response.json()["errors"]}
    assert "timestamp-not-older-than-10-years" in rules
