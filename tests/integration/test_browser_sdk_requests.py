"""What the vendors' browser SDKs send, at the HTTP level, through the site's WSGI application on
both request paths (ADR 0037): analytics.js's settings and its one-letter and batching paths
with a public key (Basic auth, so a preflight first), and Snowplow's browser tracker's tp2
post with credentials. The browser tests (tests/browser/test_browser_sdks.py) drive the SDKs
themselves; these pin each answer's shape and CORS headers."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from events.models import Event, PersonLink
from tests.public_keys import OTHER, SHOP, fresh_public_origins, public_key_create  # noqa: F401
from trackers.api_snowplow import snowplow_links_forget
from trackers.snowplow import snowplow_user_links

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres")]
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
TP2 = "/com.snowplowanalytics.snowplow/tp2"


@pytest.fixture(autouse=True)
def fresh_snowplow_links():
    snowplow_links_forget()
    yield
    snowplow_links_forget()


def _preflight(client, path: str, origin: str, headers: str):
    return client.request(
        "OPTIONS",
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


def test_analytics_js_settings_name_this_host_as_its_api_host(ingest_client):
    """GET /v1/projects/<key>/settings: Segment.io (our intake, here) as its one destination,
    nothing else to load, readable from any page; a path that is no key is a 404."""
    response = ingest_client.get("/v1/projects/pk_abc-123/settings", HTTP_ORIGIN=SHOP)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    settings = response.json()
    assert settings["integrations"] == {
        "Segment.io": {"apiKey": "pk_abc-123", "apiHost": "127.0.0.1:8000/v1", "protocol": "http"}
    }
    assert settings["metrics"] == {"sampleRate": 0}
    assert ingest_client.get("/v1/projects/a%3Cb/settings").status_code == 404


@pytest.mark.parametrize("path", ["/v1/t", "/v1/p", "/v1/i", "/v1/b", "/v1/track", "/v1/batch"])
def test_analytics_js_preflight_is_granted_to_the_keys_origins_only(ingest_client, path):
    public_key_create(SHOP)
    asked = "authorization,content-type,x-retry-count"
    granted = _preflight(ingest_client, path, SHOP, asked)
    assert granted.status_code == 204
    assert granted.headers["Access-Control-Allow-Origin"] == SHOP
    allowed = granted.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "x-retry-count"} <= set(allowed.split(", "))
    assert _preflight(ingest_client, path, OTHER, asked).status_code == 403


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def test_analytics_js_calls_and_batches_are_stored_from_a_listed_origin(ingest_client):
    """analytics.js's text/plain bodies with the write key as Basic auth: a track at /v1/t, an
    identify at /v1/i, a batch at /v1/b; a page of another origin is refused (403, Origin)."""
    key = public_key_create(SHOP)
    auth = {"HTTP_AUTHORIZATION": _basic(key), "HTTP_ORIGIN": SHOP}
    track = {"type": "track", "event": "Product Viewed", "anonymousId": "a-1", "writeKey": key}
    track |= {"messageId": "ajs-1", "properties": {"product_id": "sku_1"}}
    sent = ingest_client.post_raw("/v1/t", json.dumps(track).encode(), "text/plain", **auth)
    assert sent.status_code == 200, sent.content
    assert sent.headers["Access-Control-Allow-Origin"] == SHOP
    identify = {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "messageId": "ajs-2"}
    linked = ingest_client.post_raw("/v1/i", json.dumps(identify).encode(), "text/plain", **auth)
    assert linked.status_code == 200, linked.content
    batch = {"batch": [track | {"messageId": "ajs-3"}], "writeKey": key, "sentAt": None}
    batched = ingest_client.post_raw("/v1/b", json.dumps(batch).encode(), "text/plain", **auth)
    assert batched.status_code == 200 and batched.json()["accepted"] == 1, batched.content
    assert Event.objects.filter(event_type="product_view", product_id="sku_1").count() == 2
    assert PersonLink.objects.get(linked_id="a-1").user_id == "u-1"
    other = {**auth, "HTTP_ORIGIN": OTHER}
    refused = ingest_client.post_raw("/v1/t", json.dumps(track).encode(), "text/plain", **other)
    assert refused.status_code == 403
    assert Event.objects.count() == 2


def _tp2_body(key: str, **event: str) -> bytes:
    base = {"e": "pv", "eid": str(uuid.uuid4()), "aid": key, "p": "web", "tv": "js-4.10.1"}
    base |= {"dtm": "1767607200000", "stm": "1767607200100", "duid": "d-1", "url": SHOP}
    return json.dumps({"schema": PAYLOAD_DATA, "data": [base | event]}).encode()


def test_snowplow_tp2_from_a_page_allows_credentials(ingest_client):
    """The browser tracker posts `application/json; charset=UTF-8` with credentials by
    default: the preflight and the answer allow credentials for a listed origin only; its
    setUserId (uid beside duid) links the browser's id to the user."""
    key = public_key_create(SHOP)
    granted = _preflight(ingest_client, TP2, SHOP, "content-type")
    assert granted.status_code == 204
    assert granted.headers["Access-Control-Allow-Credentials"] == "true"
    assert _preflight(ingest_client, TP2, OTHER, "content-type").status_code == 403
    json_utf8 = "application/json; charset=UTF-8"
    sent = ingest_client.post_raw(TP2, _tp2_body(key, uid="u-9"), json_utf8, HTTP_ORIGIN=SHOP)
    assert sent.status_code == 200, sent.content
    assert sent.headers["Access-Control-Allow-Origin"] == SHOP
    assert sent.headers["Access-Control-Allow-Credentials"] == "true"
    assert PersonLink.objects.get(linked_id="d-1").user_id == "u-9"
    refused = ingest_client.post_raw(TP2, _tp2_body(key), json_utf8, HTTP_ORIGIN=OTHER)
    assert refused.status_code == 403
    assert "Access-Control-Allow-Credentials" not in refused.headers
    assert Event.objects.count() == 1


def test_snowplow_user_links_are_made_once_per_pair_and_only_for_storable_ids():
    seen: dict = {}
    events = [
        {"uid": "u-1", "duid": "d-1"},
        {"uid": "u-1", "duid": "d-1"},  # the same pair in the same request
        {"uid": "u-1"},  # no browser id: nothing to link
        {"uid": "u-2", "duid": "u-2"},  # the same id
        {"uid": "u" * 129, "duid": "d-2"},  # too long: the event itself is refused
        "not an event",
    ]
    calls = snowplow_user_links(events, seen)
    assert [(c.kind, c.user_id, c.anonymous_id) for c in calls] == [("alias", "u-1", "d-1")]
    assert snowplow_user_links([{"uid": "u-1", "duid": "d-1"}], seen) == []  # seen before
