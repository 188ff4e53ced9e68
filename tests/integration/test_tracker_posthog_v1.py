"""What else the PostHog SDKs call, against a live server: posthog-python 7.x's capture v1
(`capture_mode="v1"`: `POST /i/v1/analytics/events`, Bearer key, an answer per event uuid), its
AI-events lane, what posthog-js loads on start (its remote config, as JSON or as a script, and
the flags call), readable cross-origin, and posthog-js's capture from a shop's page with a
public key (CORS for the key's origins). Each keeps the SDK working: events stored with the
same ids and fields as through /batch/, nothing reported as an error."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import posthog
import pytest
import requests

from events import cors, services
from events.models import Event, RejectedEvent
from events.original_selectors import event_original
from trackers.event_ids import event_id_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]


@pytest.fixture
def key():
    return services.ingestion_key_create(name="posthog", scopes=["write"])


def stored_id(key, message_uuid: str) -> uuid.UUID:
    return uuid.UUID(
        event_id_for(source="posthog", key_id=key.key.id, message_id=message_uuid, message=None)
    )


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_capture_v1_events_are_stored_as_through_batch(live_server, key, compression):
    errors: list = []
    client = posthog.Posthog(
        key.raw_key,
        host=live_server.url,
        capture_mode="v1",
        capture_compression=compression,
        on_error=lambda error, batch: errors.append(error),
    )
    page = client.capture(
        "$pageview",
        distinct_id="user-1",
        properties={"$current_url": "https://shop.example/p/1", "$session_id": "sess-9"},
    )
    order = client.capture(
        "Order Completed",
        distinct_id="user-1",
        properties={"order_id": "o-9", "revenue": 12.5, "currency": "EUR"},
    )
    client.flush()
    client.shutdown()
    assert errors == []

    pageview = Event.objects.get(event_id=stored_id(key, page))
    assert (pageview.event_type, pageview.user_id) == ("page_view", "user-1")
    assert pageview.session_id == "sess-9"  # v1 sends it at the top, not in properties
    assert pageview.page_url == "https://shop.example/p/1"
    assert pageview.properties["$lib"] == "posthog-python"  # from the PostHog-Sdk-Info header
    assert (pageview.source, event_original(pageview)["uuid"]) == ("posthog", page)
    assert "options" in event_original(pageview)  # kept as sent: the v1 shape
    purchase = Event.objects.get(event_id=stored_id(key, order))
    assert (purchase.event_type, purchase.order_id, str(purchase.revenue)) == (
        "purchase",
        "o-9",
        "12.50",
    )


def test_capture_v1_answers_per_uuid_and_quarantines_a_bad_event(live_server, key):
    """A purchase without revenue is `drop` (resending would not help) and kept as sent; a
    re-sent uuid is `ok` and stored once; a body of the wrong shape is a 400 with a reason."""
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC).isoformat()
    common = {"distinct_id": "u", "timestamp": now, "options": {}, "properties": {}}
    body = {
        "created_at": now,
        "batch": [
            {**common, "event": "signup", "uuid": good},
            {**common, "event": "Order Completed", "uuid": bad},
        ],
    }
    headers = {"Authorization": f"Bearer {key.raw_key}", "PostHog-Sdk-Info": "posthog-go/1.0"}
    url = live_server.url + "/i/v1/analytics/events"
    for _ in range(2):
        answer = requests.post(url, json=body, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.content
        results = answer.json()["results"]
        assert results[good] == {"result": "ok"}
        assert results[bad]["result"] == "drop" and "revenue" in results[bad]["details"]
    assert Event.objects.filter(event_id=stored_id(key, good)).count() == 1
    row = RejectedEvent.objects.get()
    assert json.loads(row.raw_payload)["uuid"] == bad
    assert row.translation["format"] == "v1" and row.attempts == 2
    refused = requests.post(url, json={"batch": {}}, headers=headers, timeout=10)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "batch"
    no_key = requests.post(url, json=body, timeout=10)
    assert no_key.status_code in (401, 403)


def test_ai_events_lane_is_stored(live_server, key):
    errors: list = []
    client = posthog.Posthog(
        key.raw_key,
        host=live_server.url,
        enable_full_ai_capture=True,
        on_error=lambda error, batch: errors.append(error),
    )
    answer = requests.post(
        live_server.url + "/i/v0/ai/batch/",
        json={"api_key": key.raw_key, "batch": [{"event": "$ai_generation", "distinct_id": "u"}]},
        timeout=10,
    )
    client.shutdown()
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    assert Event.objects.get().event_type == "$ai_generation"
    assert errors == []


def test_posthog_js_start_calls_are_answered_cross_origin(live_server, key):
    """posthog-js loads /array/<token>/config (or config.js) and, unless told there are no
    flags, /flags/?v=2&config=true: all answered, readable from any page, nothing stored."""
    origin = {"Origin": "https://shop.example.com"}
    config = requests.get(
        f"{live_server.url}/array/{key.raw_key}/config", headers=origin, timeout=10
    )
    assert config.status_code == 200
    assert config.headers["Access-Control-Allow-Origin"] == "*"
    assert config.json()["hasFeatureFlags"] is False
    assert config.json()["analytics"]["endpoint"] == "/e/"
    script = requests.get(f"{live_server.url}/array/{key.raw_key}/config.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("application/javascript")
    assert f'_POSTHOG_REMOTE_CONFIG["{key.raw_key}"]' in script.text
    assert '"hasFeatureFlags":false' in script.text
    preflight = requests.options(
        f"{live_server.url}/flags/?v=2&config=true",
        headers={**origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    flags = requests.post(
        f"{live_server.url}/flags/?v=2&config=true",
        json={"token": key.raw_key, "distinct_id": "d"},
        headers=origin,
        timeout=10,
    )
    assert flags.status_code == 200 and flags.json()["flags"] == {}
    assert flags.headers["Access-Control-Allow-Origin"] == "*"
    bad_token = requests.get(f"{live_server.url}/array/<script>/config", timeout=10)
    assert bad_token.status_code == 404
    assert Event.objects.count() == 0 and RejectedEvent.objects.count() == 0


def test_posthog_js_capture_with_a_public_key_is_cors_bound_to_its_origins(live_server):
    """posthog-js in a shop's page: a public key as its token, the page's Origin checked, the
    preflight answered for the key's origins, the answer readable by the page."""
    cors.public_origins_forget()
    shop, other = "https://shop.example.com", "https://evil.example.net"
    key = services.ingestion_key_create(name="site", kind="public", allowed_origins=[shop])
    url = f"{live_server.url}/e/?ip=0&ver=1.200.0"

    def preflight(origin: str):
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        return requests.options(url, headers=headers, timeout=10)

    assert preflight(shop).status_code == 204
    assert preflight(shop).headers["Access-Control-Allow-Origin"] == shop
    assert preflight(other).status_code == 403
    event = {"event": "$pageview", "uuid": str(uuid.uuid4()), "timestamp": _now()}
    event["properties"] = {"token": key.raw_key, "distinct_id": "d-1", "$device_id": "d-1"}
    body = json.dumps([event])
    sent = requests.post(
        url, data=body, headers={"Origin": shop, "Content-Type": "text/plain"}, timeout=10
    )
    assert sent.status_code == 200, sent.content
    assert sent.headers["Access-Control-Allow-Origin"] == shop
    assert Event.objects.get().anonymous_id == "d-1"
    refused = requests.post(url, data=body, headers={"Origin": other}, timeout=10)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["field"] == "Origin"
    assert Event.objects.count() == 1
    cors.public_origins_forget()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
