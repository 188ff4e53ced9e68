"""The open event model through the HTTP API on both request paths (ADR 0014): custom events,
minimal events with device type and country derived from the request, null = absent, the
naive-timestamp warning, /events/recent by receipt, the allowed-names rule, and the service
that protocol translators call with source, original and client context."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson
import pytest

from events.derivation import ClientContext
from events.models import Event
from events.original_selectors import event_original
from events.services import IngestSource, event_batch_ingest, event_pks_of_users
from quality.models import QualityRule
from quality.services.defaults import defaults_load
from quality.services.rules import rule_set_bump
from tests.factories import EventFactory, event_payload

pytestmark = pytest.mark.django_db

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def minimal(**overrides):
    payload = {
        "event_id": str(uuid.uuid4()),
        "event_type": "newsletter_signup",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "anonymous_id": "anon-42",
    }
    payload.update(overrides)
    return payload


def test_a_custom_event_with_only_an_anonymous_id_is_stored_with_derived_fields(
    dev_mode, ingest_client
):
    """Device type from the User-Agent, country from the client IP, a session of its own,
    each named in `derived`; the protocol is our own API."""
    payload = minimal(properties={"list": "weekly"})
    response = ingest_client.post_json(
        "/events", payload, HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="81.2.69.160"
    )
    assert response.status_code == 201, response.content
    event = Event.objects.get(event_id=payload["event_id"])
    assert (event.event_type, event.user_id, event.anonymous_id) == (
        "newsletter_signup",
        "",
        "anon-42",
    )
    assert (event.device_type, event.country) == ("mobile", "GB")
    assert event.session_id.startswith("s_")
    assert sorted(event.derived) == ["country", "device_type", "session_id"]
    assert event.source == "api" and event.original is None
    assert event.client_ip is None  # STORE_CLIENT_IP is off by default
    assert event.properties == {"list": "weekly"}


def test_the_client_ip_is_kept_only_when_the_setting_asks(dev_mode, ingest_client, settings):
    settings.STORE_CLIENT_IP = True
    payload = minimal()
    response = ingest_client.post_json("/events", payload, REMOTE_ADDR="8.8.8.8")
    assert response.status_code == 201, response.content
    event = Event.objects.get(event_id=payload["event_id"])
    assert (event.client_ip, event.country) == ("8.8.8.8", "US")


def test_explicit_fields_are_kept_and_not_marked_derived(dev_mode, ingest_client):
    payload = event_payload()
    response = ingest_client.post_json(
        "/events", payload, HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="81.2.69.160"
    )
    assert response.status_code == 201, response.content
    event = Event.objects.get(event_id=payload["event_id"])
    assert (event.device_type, event.country, event.session_id) == (
        "desktop",
        "US",
        "session_67890",
    )
    assert event.derived == []


def test_null_in_optional_fields_is_stored_as_absent(dev_mode, ingest_client):
    payload = event_payload(
        session_id=None,
        device_type=None,
        country=None,
        page_url=None,
        referrer=None,
        product_id=None,
        currency=None,
        properties=None,
        sent_at=None,
    )
    response = ingest_client.post_json("/events", payload, HTTP_USER_AGENT=WINDOWS)
    assert response.status_code == 201, response.content
    event = Event.objects.get(event_id=payload["event_id"])
    assert (event.page_url, event.product_id, event.currency, event.properties) == ("", "", "", {})
    assert (event.device_type, event.country) == ("desktop", "ZZ")  # 127.0.0.1: unknown
    assert sorted(event.derived) == ["country", "device_type", "session_id"]


def test_a_batch_of_custom_and_commerce_events_without_identity_answers_per_event(
    dev_mode, ingest_client
):
    events = [
        minimal(event_type="Video Played"),
        minimal(anonymous_id=None),  # no identity at all
        minimal(event_type="purchase"),  # a commerce type keeps its requirements
        minimal(event_type="x" * 129),
    ]
    response = ingest_client.post_json("/events/batch", {"events": events})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected"]
    assert {(e["field"], e["rule"]) for e in results[1]["errors"]} == {("user_id", "required")}
    assert {(e["field"], e["rule"]) for e in results[2]["errors"]} == {
        ("order_id", "required"),
        ("revenue", "required"),
    }
    assert results[3]["errors"][0]["field"] == "event_type"
    assert Event.objects.get().event_type == "Video Played"


def test_a_timestamp_without_offset_is_stored_as_utc_with_a_warning(dev_mode, ingest_client):
    payload = event_payload(timestamp="2024-01-15T10:30:00")
    response = ingest_client.post_json("/events", payload)
    assert response.status_code == 201, response.content
    assert [(w["field"], w["rule"]) for w in response.json()["warnings"]] == [
        ("timestamp", "utc_offset")
    ]
    event = Event.objects.get(event_id=payload["event_id"])
    assert event.timestamp == dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.UTC)
    assert [w["rule"] for w in event.warnings] == ["utc_offset"]


def test_recent_orders_by_receipt_by_default_so_the_readme_example_shows_up(
    dev_mode, ingest_client
):
    """An event of 2024 posted now is on top by receipt; by event time newer ones win."""
    newer = event_payload()
    old = event_payload(timestamp="2024-01-15T10:30:00Z")
    for payload in (newer, old):
        assert ingest_client.post_json("/events", payload).status_code == 201
    default = ingest_client.get("/events/recent?limit=1").json()
    assert default["events"][0]["event_id"] == old["event_id"]
    assert default["order"] == "received_at"
    received = ingest_client.get("/events/recent?limit=1&order=received").json()
    assert received["events"][0]["event_id"] == old["event_id"]
    by_time = ingest_client.get("/events/recent?limit=1&order=timestamp").json()
    assert by_time["events"][0]["event_id"] == newer["event_id"]
    assert by_time["order"] == "timestamp"
    refused = ingest_client.get("/events/recent?order=sideways")
    assert refused.status_code == 400 and ("order", "invalid_choice") in refused.error_pairs()


def test_custom_events_can_be_filtered_by_name(dev_mode, ingest_client):
    ingest_client.post_json("/events/batch", {"events": [minimal(), minimal(event_type="x y")]})
    body = ingest_client.get("/events/recent?event_type=x%20y").json()
    assert [event["event_type"] for event in body["events"]] == ["x y"]


@pytest.mark.parametrize("severity", ["warning", "error"])
def test_the_allowed_names_rule_is_off_by_default_and_closes_the_taxonomy_when_on(
    dev_mode, ingest_client, severity
):
    defaults_load()
    rule = QualityRule.objects.get(name="allowed-event-names")
    assert rule.enabled is False
    first = ingest_client.post_json("/events", minimal(event_type="wishlist_add"))
    assert first.status_code == 201, first.content

    rule.enabled, rule.severity = True, severity
    rule.save(update_fields=["enabled", "severity"])
    rule_set_bump()
    known = ingest_client.post_json("/events", event_payload())
    assert known.status_code == 201 and "warnings" not in known.json()
    unknown = ingest_client.post_json("/events", minimal(event_type="wishlist_add"))
    if severity == "warning":
        assert unknown.status_code == 201
        assert [w["rule"] for w in unknown.json()["warnings"]] == ["allowed-event-names"]
    else:
        assert unknown.status_code == 400
        assert ("event_type", "allowed-event-names") in unknown.error_pairs()


def test_the_service_stores_source_original_and_per_event_context():
    """What the protocol translators (trackers app) call: the protocol is the event's source,
    each original message is kept, and each message's own User-Agent and IP are used."""
    messages = [{"type": "track", "event": "Signed Up", "messageId": "m1"}, None]
    outcomes = event_batch_ingest(
        [minimal(), minimal()],
        source=IngestSource(protocol="segment", user_agent=WINDOWS, ip="8.8.8.8"),
        context=[ClientContext(IPHONE, "81.2.69.160"), None],
        originals=messages,
    )
    assert [outcome.status for outcome in outcomes] == ["accepted", "accepted"]
    first, second = (Event.objects.get(pk=outcome.id) for outcome in outcomes)
    assert (first.source, event_original(first), first.device_type, first.country) == (
        "segment",
        messages[0],
        "mobile",
        "GB",
    )
    assert (second.source, event_original(second), second.device_type, second.country) == (
        "segment",
        None,
        "desktop",
        "US",
    )


def test_unknown_country_is_shown_as_unknown_and_can_be_filtered(user_client):
    """Events whose country could not be derived are stored as ZZ and read "Unknown"."""
    EventFactory(country="ZZ")
    EventFactory(country="US")
    page = user_client.get("/audience/").content.decode()
    assert "<td>Unknown</td>" in page and '<option value="ZZ">Unknown</option>' in page
    filtered = user_client.get("/audience/?country=ZZ").content.decode()
    assert "Ignored unknown country" not in filtered and "<td>US</td>" not in filtered


def test_erasure_finds_events_by_anonymous_id_and_never_by_an_empty_id():
    """A person's anonymous events are theirs too; events without a user id are not anyone's."""
    mine = EventFactory(user_id="", anonymous_id="anon-erase")
    linked = EventFactory(user_id="u-erase", anonymous_id="anon-other")
    stranger = EventFactory(user_id="", anonymous_id="anon-stranger")
    found = event_pks_of_users(["u-erase", "anon-erase"])
    assert sorted(found) == sorted([mine.pk, linked.pk])
    assert stranger.pk not in event_pks_of_users(["", "nobody"])


def test_an_original_message_jsonb_cannot_hold_is_kept_as_escaped_text():
    """NUL and lone surrogates in a translated message never cost the event (no 500)."""
    originals = [{"event": "bad\x00name"}, {"event": "half \ud800"}, {"n": 2**70}]
    outcomes = event_batch_ingest(
        [minimal(), minimal(), minimal()],
        source=IngestSource(protocol="segment"),
        originals=originals,
    )
    assert [outcome.status for outcome in outcomes] == ["accepted"] * 3
    for outcome in outcomes:
        stored = event_original(Event.objects.get(pk=outcome.id))
        assert set(stored) == {"unstorable_json"} and isinstance(stored["unstorable_json"], str)


def test_an_original_written_by_its_translation_keeps_escapes_and_loses_no_nul():
    """Originals handed over as JSON bytes (Segment's): escapes other than NUL are stored as
    sent; a NUL among other escapes still makes the original escaped text."""
    kept = {"event": 'say "hi"', "path": "C:\\temp\n"}
    originals = [orjson.dumps(kept), orjson.dumps({"event": "tab\tthen \x00"})]
    outcomes = event_batch_ingest(
        [minimal(), minimal()], source=IngestSource(protocol="segment"), originals=originals
    )
    assert [outcome.status for outcome in outcomes] == ["accepted"] * 2
    assert event_original(Event.objects.get(pk=outcomes[0].id)) == kept
    escaped = event_original(Event.objects.get(pk=outcomes[1].id))
    assert set(escaped) == {"unstorable_json"}
