"""Public (browser) keys, ADR 0018: CORS preflights answered for listed origins only, the Origin
checked on the actual request, the key in the query string or body, text/plain JSON bodies
(sendBeacon), write only, their own rate limit; secret keys as before. Through the site's WSGI
application, with the ingestion fast path on and off."""

from __future__ import annotations

import io
import re

import orjson
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError

from events import services
from events.models import Event, IngestionKey, RejectedEvent
from tests.factories import event_payload
from tests.helpers import WsgiClient, error_pairs
from tests.public_keys import OTHER, SHOP, fresh_public_origins, public_key_create  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_key() -> str:
    return public_key_create(SHOP + "/")


def _preflight(client: WsgiClient, path: str, origin: str, method: str = "POST"):
    return client.request(
        "OPTIONS",
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )


def _beacon(client: WsgiClient, path: str, body: dict, origin: str = SHOP, **headers):
    """What navigator.sendBeacon sends: a text/plain POST with the page's Origin."""
    return client.post_raw(
        path, orjson.dumps(body), "text/plain;charset=UTF-8", HTTP_ORIGIN=origin, **headers
    )


def test_a_public_key_is_write_only_bound_to_origins_and_recognisable():
    created = services.ingestion_key_create(
        name="site", kind="public", allowed_origins=["HTTPS://Shop.Example.com/"]
    )
    assert created.raw_key.startswith("pk_")
    assert created.key.scopes == ["write"]
    assert created.key.allowed_origins == [SHOP]
    with pytest.raises(ValueError, match="only write"):
        services.ingestion_key_create(
            name="x", kind="public", scopes=["write", "read"], allowed_origins=[SHOP]
        )
    with pytest.raises(ValueError, match="needs the origins"):
        services.ingestion_key_create(name="x", kind="public")
    with pytest.raises(ValueError, match="not an origin"):
        services.ingestion_key_create(name="x", kind="public", allowed_origins=["https://*.shop"])
    with pytest.raises(ValueError, match="Only public keys"):
        services.ingestion_key_create(name="x", allowed_origins=[SHOP])


def test_preflight_is_answered_for_listed_origins_only(ingest_client, public_key):
    allowed = _preflight(ingest_client, "/events/batch", SHOP)
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in allowed["Access-Control-Allow-Methods"]
    assert "Content-Type" in allowed["Access-Control-Allow-Headers"]
    assert allowed["Vary"] == "Origin"

    denied = _preflight(ingest_client, "/api/v1/events/batch", OTHER)
    assert denied.status_code == 403
    assert "Access-Control-Allow-Origin" not in denied.headers
    assert error_pairs(denied.json()) == {("Origin", "allowed_origin")}
    wrong_method = _preflight(ingest_client, "/events", SHOP, method="DELETE")
    assert wrong_method.status_code == 403
    assert "Access-Control-Allow-Origin" not in wrong_method.headers


def test_preflight_with_a_key_in_the_query_uses_that_keys_origins(ingest_client, public_key):
    other = services.ingestion_key_create(name="o", kind="public", allowed_origins=[OTHER])
    assert _preflight(ingest_client, f"/events/batch?key={public_key}", SHOP).status_code == 204
    mine = _preflight(ingest_client, f"/events/batch?key={other.raw_key}", SHOP)
    assert mine.status_code == 403
    assert _preflight(ingest_client, "/events/batch?key=pk_unknown", SHOP).status_code == 403


def test_a_beacon_with_the_key_in_the_query_is_stored_and_readable(ingest_client, public_key):
    response = _beacon(
        ingest_client, f"/events/batch?key={public_key}", {"events": [event_payload()]}
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in response["Vary"]
    assert Event.objects.count() == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_the_key_may_be_the_bodys_key_field(ingest_client, public_key, content_type):
    event = event_payload()
    batch = ingest_client.post_raw(
        "/events/batch",
        orjson.dumps({"key": public_key, "events": [event]}),
        content_type,
        HTTP_ORIGIN=SHOP,
    )
    assert batch.status_code == 200, batch.content
    single = ingest_client.post_raw(
        "/events",
        orjson.dumps({**event_payload(), "key": public_key}),
        content_type,
        HTTP_ORIGIN=SHOP,
    )
    assert single.status_code == 201, single.content
    assert Event.objects.count() == 2
    assert not Event.objects.filter(properties__has_key="key").exists()


def test_a_wrong_or_missing_origin_is_403_with_a_reason_and_stores_nothing(
    ingest_client, public_key
):
    other = services.ingestion_key_create(name="o", kind="public", allowed_origins=[OTHER])
    wrong = _beacon(
        ingest_client, f"/events/batch?key={other.raw_key}", {"events": [event_payload()]}
    )
    assert wrong.status_code == 403
    assert error_pairs(wrong.json()) == {("Origin", "allowed_origin")}
    assert OTHER in wrong.json()["detail"] and SHOP in wrong.json()["detail"]
    # SHOP is listed on a public key: the page may read the refusal (and so not retry it).
    assert wrong["Access-Control-Allow-Origin"] == SHOP
    missing = ingest_client.post_json(
        f"/events/batch?key={public_key}", {"events": [event_payload()]}
    )
    assert missing.status_code == 403
    assert error_pairs(missing.json()) == {("Origin", "allowed_origin")}
    assert Event.objects.count() == 0
    assert RejectedEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/events/stats"),
        ("GET", "/events/recent"),
        ("GET", "/api/v1/events"),
        ("POST", "/api/v1/erasure"),
    ],
)
def test_a_public_key_is_refused_on_read_export_and_admin(ingest_client, public_key, method, path):
    for headers in ({"HTTP_AUTHORIZATION": f"Bearer {public_key}"}, {}):
        query = "" if headers else f"?key={public_key}"
        body = orjson.dumps({"user_id": "u1"}) if method == "POST" else b""
        response = ingest_client.request(
            method, path + query, body, CONTENT_TYPE="application/json", HTTP_ORIGIN=SHOP, **headers
        )
        assert response.status_code == 403, (path, headers, response.content)


def test_a_secret_key_outside_the_header_is_refused(ingest_client, ingestion_key):
    raw = ingestion_key.raw_key
    in_query = ingest_client.post_json(f"/events/batch?key={raw}", {"events": [event_payload()]})
    assert in_query.status_code == 401
    assert error_pairs(in_query.json()) == {("key", "secret_key_in_header")}
    in_body = ingest_client.post_json("/events/batch", {"key": raw, "events": [event_payload()]})
    assert in_body.status_code == 401
    assert Event.objects.count() == 0


def test_secret_keys_are_unchanged_and_get_no_cors_grant(ingest_client, ingestion_key, public_key):
    ingest_client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingestion_key.raw_key}")
    response = ingest_client.post_json("/events", event_payload(), HTTP_ORIGIN=OTHER)
    assert response.status_code == 201
    assert "Access-Control-Allow-Origin" not in response.headers
    plain = ingest_client.post_raw("/events/batch", orjson.dumps({"events": []}), "text/plain")
    assert plain.status_code == 415
    assert error_pairs(plain.json()) == {("Content-Type", "application/json")}


def test_public_keys_have_their_own_rate_limit(require_redis, settings, ingest_client, public_key):
    settings.INGEST_THROTTLE_ENABLED = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "ingest_public": "2/hour",
        },
    }
    cache.clear()
    try:
        path = f"/events/batch?key={public_key}"
        answers = [_beacon(ingest_client, path, {"events": [event_payload()]}) for _ in range(3)]
        assert [answer.status_code for answer in answers] == [200, 200, 429]
        assert error_pairs(answers[2].json()) == {("request", "rate_limit")}
        assert answers[2]["Access-Control-Allow-Origin"] == SHOP
        secret = services.ingestion_key_create(name="server", scopes=["write"]).raw_key
        ingest_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert ingest_client.post_json("/events/batch", {"events": []}).status_code == 200
    finally:
        cache.clear()
    assert Event.objects.count() == 2


def test_the_command_creates_a_public_key(ingest_client):
    out = io.StringIO()
    call_command(
        "ingestion_key",
        "create",
        "shop",
        "--public",
        "--origins",
        f"{SHOP},http://localhost:8080",
        stdout=out,
    )
    raw_key = re.search(r"^pk_\S{20,}$", out.getvalue(), re.MULTILINE).group(0)
    assert "kind=public scopes=write" in out.getvalue()
    key = IngestionKey.objects.get(name="shop")
    assert key.allowed_origins == ["http://localhost:8080", SHOP]
    assert _preflight(ingest_client, f"/events?key={raw_key}", SHOP).status_code == 204
    with pytest.raises(CommandError, match="needs the origins"):
        call_command("ingestion_key", "create", "bare", "--public", stdout=io.StringIO())


def test_admin_creates_a_public_key_and_refuses_one_that_could_read(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-1234-x")
    client.force_login(admin)
    form = {"name": "site", "kind": "public", "is_active": "on", "_save": "Save"}
    refused = client.post(
        "/admin/events/ingestionkey/add/",
        {**form, "scopes": ["write", "read"], "allowed_origins": SHOP},
    )
    assert refused.status_code == 200
    assert "A public key may only write." in refused.content.decode()
    no_origin = client.post("/admin/events/ingestionkey/add/", {**form, "scopes": ["write"]})
    assert "A public key needs its origins." in no_origin.content.decode()
    response = client.post(
        "/admin/events/ingestionkey/add/",
        {**form, "scopes": ["write"], "allowed_origins": f"{SHOP}/\nhttp://localhost:8080"},
        follow=True,
    )
    messages = " ".join(str(message) for message in response.context["messages"])
    raw_key = re.search(r"pk_[A-Za-z0-9_\-]{20,}", messages).group(0)
    key = IngestionKey.objects.get(name="site")
    assert (key.kind, key.scopes) == ("public", ["write"])
    assert key.allowed_origins == ["http://localhost:8080", SHOP]
    assert key.key_hash == IngestionKey.hash_key(raw_key)
