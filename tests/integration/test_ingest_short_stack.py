"""Event POSTs through the site's real WSGI application, as gunicorn sends them, on both request
paths (the `ingest_client` fixture): the ingestion fast path (analytics_site/fastpath/) and,
with INGEST_FASTPATH off, Django's handler and the full MIDDLEWARE. The same auth, throttling,
errors, storage and metrics on both, and the prepared insert.

The Django test client would always take Django's handler and the full middleware."""

from __future__ import annotations

import gc
import uuid

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from prometheus_client import REGISTRY

from analytics_site.fastpath.handler import (
    IngestAwareWSGIHandler,
    ShortStackWSGIHandler,
    wsgi_application,
)
from analytics_site.wsgi import application
from events import services
from events.models import Event, RejectedEvent
from tests.factories import event_payload
from tests.helpers import send_twice

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_mode(settings):
    """Outside development: sending events needs an ingestion key."""
    settings.INGEST_ALLOW_ANONYMOUS = False
    settings.READ_ALLOW_ANONYMOUS = False
    return settings


def test_the_site_application_is_the_ingest_aware_handler():
    """INGEST_FASTPATH defaults to on: the site's application has the fast path."""
    assert isinstance(application, IngestAwareWSGIHandler)


def test_with_the_fast_path_off_the_application_is_djangos_handler(settings):
    settings.INGEST_FASTPATH = False
    assert type(wsgi_application()) is WSGIHandler


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/events", event_payload, 201),
        ("/v1/batch", lambda: {"batch": [{"type": "track", "event": "X", "userId": "u"}]}, 200),
        ("/batch/", lambda: {"batch": [{"event": "X", "distinct_id": "u"}]}, 200),
        (
            "/com.snowplowanalytics.snowplow/tp2",
            lambda: {
                "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
                "data": [{"e": "pv", "uid": "u"}],
            },
            200,
        ),
    ],
    ids=["events", "segment", "posthog", "snowplow"],
)
def test_each_path_answers_from_its_own_handler(ingest_client, dev_mode, path, body, status):
    """On the fast path an event POST (ours or a tracker protocol's batch) is answered by the
    short chain; with it off, by Django's WSGIHandler through the full MIDDLEWARE
    (SessionMiddleware's Vary: Cookie shows it ran)."""
    response = ingest_client.post_json(path, body())
    assert response.status_code == status, response.content
    vary = response.headers.get("Vary", "")  # the protocols' answers vary on nothing
    if ingest_client.fastpath:
        assert response.handler_class is ShortStackWSGIHandler
        assert "Cookie" not in vary
    else:
        assert type(ingest_client.application) is WSGIHandler
        assert response.handler_class is WSGIHandler
        assert "Cookie" in vary or path != "/events"


@pytest.mark.parametrize("path", ["/events", "/events/", "/api/v1/events", "/api/v1/events/"])
def test_anonymous_event_in_development_is_stored_and_a_repeat_is_a_duplicate(
    ingest_client, dev_mode, path
):
    """201 with the stored id; the same event again is 200, duplicate, with the same id."""
    payload = event_payload()
    created, _ = send_twice(ingest_client, path, payload)
    assert created["id"] == Event.objects.get(event_id=payload["event_id"]).pk
    assert Event.objects.count() == 1


def test_short_stack_responses_keep_the_security_headers_and_content_length(
    ingest_client, dev_mode
):
    response = ingest_client.post_json("/events", event_payload())
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Allow"] == "GET, POST, HEAD, OPTIONS"  # GET lists events
    # the full chain's SessionMiddleware adds Cookie (DRF's session auth looked at the session)
    assert response.headers["Vary"] == ("Accept" if ingest_client.fastpath else "Accept, Cookie")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert int(response.headers["Content-Length"]) == len(response.content)


@pytest.mark.parametrize("path", ["/events/batch", "/api/v1/events/batch/"])
def test_batch_with_a_bad_event_stores_the_good_ones_and_keeps_the_bad_one(
    ingest_client, dev_mode, path
):
    good, bad = event_payload(), event_payload(country="Narnia")
    response = ingest_client.post_json(path, {"events": [good, bad]})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    rejected_id = body["results"][1]["rejected_id"]
    assert RejectedEvent.objects.get(pk=rejected_id).event_id == bad["event_id"]
    assert Event.objects.filter(event_id=good["event_id"]).exists()


def test_without_a_key_outside_development_is_401_with_a_json_body(ingest_client, production_mode):
    refused = ingest_client.post_json("/events", event_payload())
    assert refused.status_code == 401
    assert ("Authorization", "authentication_required") in refused.error_pairs()
    wrong = ingest_client.post_json("/events", event_payload(), HTTP_X_API_KEY="ek_not-a-real-key")
    assert wrong.status_code == 401
    assert ("Authorization", "valid_key") in wrong.error_pairs()
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert Event.objects.count() == 0


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_an_ingestion_key_authenticates_on_the_short_stack(ingest_client, production_mode, header):
    raw_key = services.ingestion_key_create(name="shop").raw_key
    value = f"Bearer {raw_key}" if header == "HTTP_AUTHORIZATION" else raw_key
    response = ingest_client.post_json("/events", event_payload(), **{header: value})
    assert response.status_code == 201
    batch = ingest_client.post_json(
        "/events/batch", {"events": [event_payload()]}, **{header: value}
    )
    assert batch.status_code == 200
    assert Event.objects.count() == 2


def test_a_browser_session_goes_through_the_full_stack(
    ingest_client, production_mode, client, django_user_model
):
    """A request that carries cookies takes the full middleware stack: a logged-in user's
    session (with its CSRF token, as the browsable API form sends it) may send events, which
    the short stack, having no sessions, would refuse with 401."""
    user = django_user_model.objects.create_user("analyst", password="pw-1234-x")
    client.force_login(user)
    client.get("/admin/login/")  # sets the CSRF cookie
    cookies = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    response = ingest_client.post_json(
        "/events",
        event_payload(),
        HTTP_COOKIE=cookies,
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 201
    assert "Cookie" in response.headers["Vary"]  # the session middleware ran
    without_cookies = ingest_client.post_json("/events", event_payload())
    assert without_cookies.status_code == 401


def test_ingestion_over_the_rate_is_429_on_the_short_stack(ingest_client, dev_mode, tiny_rates):
    codes = [ingest_client.post_json("/events", event_payload()).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    refused = ingest_client.post_json("/events/batch", {"events": [event_payload()]})
    assert refused.status_code == 429
    assert ("request", "rate_limit") in refused.error_pairs()
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert Event.objects.count() == 3


def test_malformed_json_is_400_and_kept(ingest_client, dev_mode):
    response = ingest_client.post_raw("/events", b'{"event_id": ')
    assert response.status_code == 400
    assert ("body", "json") in response.error_pairs()
    kept = RejectedEvent.objects.get(pk=response.json()["rejected_id"])
    assert kept.raw_payload == '{"event_id": '


def test_wrong_content_type_is_415_and_too_large_is_413(ingest_client, dev_mode, settings):
    refused = ingest_client.post_raw("/events", b"event_id=1", "text/plain")
    assert refused.status_code == 415
    assert ("Content-Type", "application/json") in refused.error_pairs()
    settings.INGEST_MAX_EVENT_BYTES = 200
    too_large = ingest_client.post_json("/events", event_payload(page_url="/" + "x" * 300))
    assert too_large.status_code == 413
    assert ("body", "max_size") in too_large.error_pairs()
    assert RejectedEvent.objects.count() == 2
    assert Event.objects.count() == 0


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_short_stack_requests_are_counted_in_the_prometheus_metrics(ingest_client, dev_mode):
    """Ingestion shows up in django_prometheus's families: requests and responses by view,
    method and status, and the latency histogram; /metrics serves them."""
    by_status = "django_http_responses_total_by_status_view_method_total"
    created = {"status": "201", "view": "events:ingest", "method": "POST"}
    refused = {"status": "400", "view": "events-v1:batch", "method": "POST"}
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    before = (
        _sample(by_status, **created),
        _sample(by_status, **refused),
        _sample(latency, view="events:ingest", method="POST"),
        _sample("django_http_requests_before_middlewares_total"),
    )
    for _ in range(3):
        assert ingest_client.post_json("/events", event_payload()).status_code == 201
    assert ingest_client.post_json("/api/v1/events/batch", {"events": "none"}).status_code == 400
    assert _sample(by_status, **created) == before[0] + 3
    assert _sample(by_status, **refused) == before[1] + 1
    assert _sample(latency, view="events:ingest", method="POST") == before[2] + 3
    assert _sample("django_http_requests_before_middlewares_total") >= before[3] + 4
    exposed = ingest_client.get("/metrics").content.decode()
    assert 'django_http_responses_total_by_status_view_method_total{method="POST",' in exposed
    assert 'view="events:ingest"' in exposed


def _prepared_inserts() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall() if "INSERT INTO events_event" in row[0]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_the_event_insert_is_prepared_outside_transactions_only_when_enabled(
    ingest_client, dev_mode, settings
):
    """Outside a transaction the insert becomes a prepared statement of the connection and
    keeps answering new/duplicate correctly; with INGEST_PREPARED_STATEMENTS off, or inside a
    transaction (a batch with rejected events), it is not prepared."""
    connection.close()
    settings.INGEST_PREPARED_STATEMENTS = False
    assert ingest_client.post_json("/events", event_payload()).status_code == 201
    assert _prepared_inserts() == []
    settings.INGEST_PREPARED_STATEMENTS = True
    with_rejects = ingest_client.post_json(
        "/events/batch", {"events": [event_payload(), {"event_id": "x"}]}
    )
    assert with_rejects.json()["accepted"] == 1
    assert _prepared_inserts() == []
    payload = event_payload()
    assert ingest_client.post_json("/events", payload).status_code == 201
    assert len(_prepared_inserts()) == 1
    repeated = ingest_client.post_json("/events", payload)
    assert (repeated.status_code, repeated.json()["duplicate"]) == (200, True)
    batch = ingest_client.post_json("/events/batch", {"events": [event_payload(), payload]})
    assert [result["status"] for result in batch.json()["results"]] == ["accepted", "duplicate"]
    assert len(_prepared_inserts()) == 1
    assert Event.objects.count() == 4


def test_each_ingestion_path_keeps_its_own_view_on_the_short_stack(ingest_client, dev_mode):
    """The short stack remembers URL matches per path: requests alternating between paths
    are each counted under their own view, also on repeats."""
    by_view = "django_http_requests_latency_seconds_by_view_method_count"
    paths = {"/events": "events:ingest", "/api/v1/events/": "events-v1:ingest"}
    batch_view = "events-v1:batch"
    before = {view: _sample(by_view, view=view, method="POST") for view in paths.values()}
    batch_before = _sample(by_view, view=batch_view, method="POST")
    for _ in range(2):
        for path in paths:
            assert ingest_client.post_json(path, event_payload()).status_code == 201
        batch = ingest_client.post_json("/api/v1/events/batch", {"events": [event_payload()]})
        assert batch.status_code == 200
    for view in paths.values():
        assert _sample(by_view, view=view, method="POST") == before[view] + 2
    assert _sample(by_view, view=batch_view, method="POST") == batch_before + 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_single_events_are_stored_across_a_reconnect(ingest_client, dev_mode):
    """The prepared insert's cursor belongs to one connection: after the connection is
    replaced, events are stored (and deduplicated) through a new one."""
    first = event_payload()
    assert ingest_client.post_json("/events", first).status_code == 201
    connection.close()
    second = event_payload()
    assert ingest_client.post_json("/events", second).status_code == 201
    repeated = ingest_client.post_json("/events", first)
    assert (repeated.status_code, repeated.json()["duplicate"]) == (200, True)
    assert len(_prepared_inserts()) == 1
    assert set(Event.objects.values_list("event_id", flat=True)) == {
        uuid.UUID(first["event_id"]),
        uuid.UUID(second["event_id"]),
    }


@pytest.mark.parametrize("ingest_client", ["fastpath"], indirect=True)
def test_a_single_event_leaves_no_reference_cycles(ingest_client, dev_mode):
    """On the fast path, a stored event's request, view and response are freed when the
    request ends, not left in reference cycles for the garbage collector."""
    ingest_client.post_json(
        "/events", event_payload()
    )  # warm: first-use caches are not per request
    gc.collect()
    gc.disable()
    try:
        assert ingest_client.post_json("/events", event_payload()).status_code == 201
        assert (
            ingest_client.post_json("/events", event_payload(), HTTP_ACCEPT="*/*").status_code
            == 201
        )
        assert gc.collect() == 0
    finally:
        gc.enable()
