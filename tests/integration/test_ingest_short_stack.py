"""Event POSTs from API clients through the site's real WSGI application (the short middleware
stack of analytics_site/fastpath/), on PostgreSQL and Redis or on SQLite: the same auth,
throttling, errors, storage and metrics as through the full stack, and the prepared insert.

These tests call `analytics_site.wsgi.application` with WSGI environs, as gunicorn does (the
test Client would use Django's full middleware stack)."""

from __future__ import annotations

import gc
import io
import json
import sys
import time
import uuid
from dataclasses import dataclass

import orjson
import psycopg
import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from prometheus_client import REGISTRY

from analytics_site.fastpath.handler import IngestAwareWSGIHandler
from analytics_site.wsgi import application
from events import services
from events.models import Event, RejectedEvent
from tests.factories import event_payload

pytestmark = pytest.mark.django_db


@dataclass
class WsgiResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self):
        return json.loads(self.content)

    def error_pairs(self) -> set[tuple[str, str]]:
        return {(e["field"], e["rule"]) for e in self.json().get("errors", [])}


def wsgi_request(
    method: str, path: str, body: bytes = b"", *, signals: bool = False, **headers: str
) -> WsgiResponse:
    """One request through the site's WSGI application, the way gunicorn calls it. With
    signals=False (inside a test's transaction) close_old_connections is disconnected from
    the request signals, as Django's test client does."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    environ.update(headers)
    started: dict = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"] = int(status.split()[0])
        started["headers"] = dict(response_headers)

    if not signals:
        # As Django's test client does: the request signals must not close the connection that
        # holds the test's transaction.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            result.close()
    finally:
        if not signals:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
    return WsgiResponse(started["status"], started["headers"], content)


def post_json(path: str, payload, *, signals: bool = False, **headers: str) -> WsgiResponse:
    return wsgi_request(
        "POST",
        path,
        orjson.dumps(payload),
        signals=signals,
        CONTENT_TYPE="application/json",
        **headers,
    )


@pytest.fixture
def production_mode(settings):
    """Outside development: sending events needs an ingestion key."""
    settings.INGEST_ALLOW_ANONYMOUS = False
    settings.READ_ALLOW_ANONYMOUS = False
    return settings


def test_the_site_application_is_the_ingest_aware_handler():
    assert isinstance(application, IngestAwareWSGIHandler)


@pytest.mark.parametrize("path", ["/events", "/events/", "/api/v1/events", "/api/v1/events/"])
def test_anonymous_event_in_development_is_stored_and_a_repeat_is_a_duplicate(dev_mode, path):
    """201 with the stored id; the same event again is 200, duplicate, with the same id."""
    payload = event_payload()
    created = post_json(path, payload)
    assert created.status_code == 201
    assert created.headers["Content-Type"] == "application/json"
    body = created.json()
    assert body["status"] == "accepted" and body["duplicate"] is False
    assert body["id"] == Event.objects.get(event_id=payload["event_id"]).pk
    repeated = post_json(path, payload)
    assert repeated.status_code == 200
    assert repeated.json()["duplicate"] is True
    assert repeated.json()["id"] == body["id"]
    assert Event.objects.count() == 1


def test_short_stack_responses_keep_the_security_headers_and_content_length(dev_mode):
    response = post_json("/events", event_payload())
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert response.headers["Vary"] == "Accept"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert int(response.headers["Content-Length"]) == len(response.content)


@pytest.mark.parametrize("path", ["/events/batch", "/api/v1/events/batch/"])
def test_batch_with_a_bad_event_stores_the_good_ones_and_keeps_the_bad_one(dev_mode, path):
    good, bad = event_payload(), event_payload(country="Narnia")
    response = post_json(path, {"events": [good, bad]})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    rejected_id = body["results"][1]["rejected_id"]
    assert RejectedEvent.objects.get(pk=rejected_id).event_id == bad["event_id"]
    assert Event.objects.filter(event_id=good["event_id"]).exists()


def test_without_a_key_outside_development_is_401_with_a_json_body(production_mode):
    refused = post_json("/events", event_payload())
    assert refused.status_code == 401
    assert ("Authorization", "authentication_required") in refused.error_pairs()
    wrong = post_json("/events", event_payload(), HTTP_X_API_KEY="ek_not-a-real-key")
    assert wrong.status_code == 401
    assert ("Authorization", "valid_key") in wrong.error_pairs()
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert Event.objects.count() == 0


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_an_ingestion_key_authenticates_on_the_short_stack(production_mode, header):
    raw_key = services.ingestion_key_create(name="shop").raw_key
    value = f"Bearer {raw_key}" if header == "HTTP_AUTHORIZATION" else raw_key
    response = post_json("/events", event_payload(), **{header: value})
    assert response.status_code == 201
    batch = post_json("/events/batch", {"events": [event_payload()]}, **{header: value})
    assert batch.status_code == 200
    assert Event.objects.count() == 2


def test_a_browser_session_goes_through_the_full_stack(production_mode, client, django_user_model):
    """A request that carries cookies takes the full middleware stack: a logged-in user's
    session (with its CSRF token, as the browsable API form sends it) may send events, which
    the short stack, having no sessions, would refuse with 401."""
    user = django_user_model.objects.create_user("analyst", password="pw-1234-x")
    client.force_login(user)
    client.get("/admin/login/")  # sets the CSRF cookie
    cookies = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    response = post_json(
        "/events",
        event_payload(),
        HTTP_COOKIE=cookies,
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 201
    assert "Cookie" in response.headers["Vary"]  # the session middleware ran
    without_cookies = post_json("/events", event_payload())
    assert without_cookies.status_code == 401


def test_ingestion_over_the_rate_is_429_on_the_short_stack(dev_mode, tiny_rates):
    codes = [post_json("/events", event_payload()).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    refused = post_json("/events/batch", {"events": [event_payload()]})
    assert refused.status_code == 429
    assert ("request", "rate_limit") in refused.error_pairs()
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert Event.objects.count() == 3


def test_malformed_json_is_400_and_kept(dev_mode):
    response = wsgi_request("POST", "/events", b'{"event_id": ', CONTENT_TYPE="application/json")
    assert response.status_code == 400
    assert ("body", "json") in response.error_pairs()
    kept = RejectedEvent.objects.get(pk=response.json()["rejected_id"])
    assert kept.raw_payload == '{"event_id": '


def test_wrong_content_type_is_415_and_too_large_is_413(dev_mode, settings):
    refused = wsgi_request("POST", "/events", b"event_id=1", CONTENT_TYPE="text/plain")
    assert refused.status_code == 415
    assert ("Content-Type", "application/json") in refused.error_pairs()
    settings.INGEST_MAX_EVENT_BYTES = 200
    too_large = post_json("/events", event_payload(page_url="/" + "x" * 300))
    assert too_large.status_code == 413
    assert ("body", "max_size") in too_large.error_pairs()
    assert RejectedEvent.objects.count() == 2
    assert Event.objects.count() == 0


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_short_stack_requests_are_counted_in_the_prometheus_metrics(dev_mode):
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
        assert post_json("/events", event_payload()).status_code == 201
    assert post_json("/api/v1/events/batch", {"events": "none"}).status_code == 400
    assert _sample(by_status, **created) == before[0] + 3
    assert _sample(by_status, **refused) == before[1] + 1
    assert _sample(latency, view="events:ingest", method="POST") == before[2] + 3
    assert _sample("django_http_requests_before_middlewares_total") >= before[3] + 4
    exposed = wsgi_request("GET", "/metrics").content.decode()
    assert 'django_http_responses_total_by_status_view_method_total{method="POST",' in exposed
    assert 'view="events:ingest"' in exposed


def _prepared_inserts() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall() if "INSERT INTO events_event" in row[0]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_the_event_insert_is_prepared_outside_transactions_only_when_enabled(dev_mode, settings):
    """Outside a transaction the insert becomes a prepared statement of the connection and
    keeps answering new/duplicate correctly; with INGEST_PREPARED_STATEMENTS off, or inside a
    transaction (a batch with rejected events), it is not prepared."""
    connection.close()
    settings.INGEST_PREPARED_STATEMENTS = False
    assert post_json("/events", event_payload()).status_code == 201
    assert _prepared_inserts() == []
    settings.INGEST_PREPARED_STATEMENTS = True
    with_rejects = post_json("/events/batch", {"events": [event_payload(), {"event_id": "x"}]})
    assert with_rejects.json()["accepted"] == 1
    assert _prepared_inserts() == []
    payload = event_payload()
    assert post_json("/events", payload).status_code == 201
    assert len(_prepared_inserts()) == 1
    repeated = post_json("/events", payload)
    assert (repeated.status_code, repeated.json()["duplicate"]) == (200, True)
    batch = post_json("/events/batch", {"events": [event_payload(), payload]})
    assert [result["status"] for result in batch.json()["results"]] == ["accepted", "duplicate"]
    assert len(_prepared_inserts()) == 1
    assert Event.objects.count() == 4


def test_each_ingestion_path_keeps_its_own_view_on_the_short_stack(dev_mode):
    """The short stack remembers URL matches per path: requests alternating between paths
    are each counted under their own view, also on repeats."""
    by_view = "django_http_requests_latency_seconds_by_view_method_count"
    paths = {"/events": "events:ingest", "/api/v1/events/": "events-v1:ingest"}
    batch_view = "events-v1:batch"
    before = {view: _sample(by_view, view=view, method="POST") for view in paths.values()}
    batch_before = _sample(by_view, view=batch_view, method="POST")
    for _ in range(2):
        for path in paths:
            assert post_json(path, event_payload()).status_code == 201
        batch = post_json("/api/v1/events/batch", {"events": [event_payload()]})
        assert batch.status_code == 200
    for view in paths.values():
        assert _sample(by_view, view=view, method="POST") == before[view] + 2
    assert _sample(by_view, view=batch_view, method="POST") == batch_before + 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_single_events_are_stored_across_a_reconnect(dev_mode):
    """The prepared insert's cursor belongs to one connection: after the connection is
    replaced, events are stored (and deduplicated) through a new one."""
    first = event_payload()
    assert post_json("/events", first).status_code == 201
    connection.close()
    second = event_payload()
    assert post_json("/events", second).status_code == 201
    repeated = post_json("/events", first)
    assert (repeated.status_code, repeated.json()["duplicate"]) == (200, True)
    assert len(_prepared_inserts()) == 1
    assert set(Event.objects.values_list("event_id", flat=True)) == {
        uuid.UUID(first["event_id"]),
        uuid.UUID(second["event_id"]),
    }


def test_a_single_event_leaves_no_reference_cycles(dev_mode):
    """A stored event's request, view and response are freed when the request ends, not left
    in reference cycles for the garbage collector (whose passes cost every ~20th event)."""
    post_json("/events", event_payload())  # warm: first-use caches are not per request
    gc.collect()
    gc.disable()
    try:
        assert post_json("/events", event_payload()).status_code == 201
        assert post_json("/events", event_payload(), HTTP_ACCEPT="*/*").status_code == 201
        assert gc.collect() == 0
    finally:
        gc.enable()


# ----------------------------------------------------------------- request signals (the short
# stack does the work of Django's own receivers itself while they are the only ones connected)


def _backend_pid() -> int:
    return connection.connection.info.backend_pid


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_a_connection_past_its_max_age_is_replaced_before_the_next_request(dev_mode):
    """close_old_connections semantics without the signals: a persistent connection that has
    outlived CONN_MAX_AGE is closed when the next request starts, and that request stores
    its event on a new one."""
    assert post_json("/events", event_payload(), signals=True).status_code == 201
    old_pid = _backend_pid()
    assert post_json("/events", event_payload(), signals=True).status_code == 201
    assert _backend_pid() == old_pid  # kept between requests (CONN_MAX_AGE)
    connection.close_at = time.monotonic() - 1
    assert post_json("/events", event_payload(), signals=True).status_code == 201
    assert _backend_pid() != old_pid
    assert Event.objects.count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_a_connection_left_outside_autocommit_is_closed_when_the_request_finishes(
    dev_mode, monkeypatch
):
    """As close_old_connections on request_finished: a connection whose autocommit was not
    restored is dropped at the end of the request."""
    insert = services.events_insert

    def insert_and_leave_autocommit_off(rows):
        stored = insert(rows)
        connection.set_autocommit(False)
        return stored

    monkeypatch.setattr(services, "events_insert", insert_and_leave_autocommit_off)
    assert post_json("/events", event_payload(), signals=True).status_code == 201
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_a_terminated_backend_between_requests_is_replaced(dev_mode):
    """A persistent connection whose backend was ended between requests (database restart,
    pg_terminate_backend) is replaced: the event is stored, no 5xx."""
    assert post_json("/events", event_payload(), signals=True).status_code == 201
    stale_pid = _backend_pid()
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [stale_pid])
    payload = event_payload()
    response = post_json("/events", payload, signals=True)
    assert response.status_code == 201, response.content
    assert _backend_pid() != stale_pid
    assert Event.objects.filter(event_id=payload["event_id"]).exists()
    assert post_json("/events", event_payload(), signals=True).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_query_logs_are_reset_when_a_request_starts(dev_mode):
    """reset_queries semantics: queries logged before a request are gone from the log once
    it has run (DEBUG keeps a per-connection log)."""
    assert post_json("/events", event_payload(), signals=True).status_code == 201
    connection.queries_log.append({"sql": "SELECT 'before'", "time": "0.000"})
    assert post_json("/events", event_payload(), signals=True).status_code == 201
    assert {"sql": "SELECT 'before'", "time": "0.000"} not in connection.queries_log


@pytest.mark.django_db(transaction=True)
def test_other_receivers_of_the_request_signals_are_still_called(dev_mode):
    """Another app's receivers of request_started and request_finished get their signal for
    each short-stack request (the handler sends the signals again as soon as the receivers
    are not Django's own)."""
    calls = []

    def on_started(sender, environ, **kwargs):
        calls.append(("started", environ["PATH_INFO"]))

    def on_finished(sender, **kwargs):
        calls.append(("finished", sender.__name__))

    request_started.connect(on_started)
    request_finished.connect(on_finished)
    try:
        assert post_json("/events", event_payload(), signals=True).status_code == 201
    finally:
        request_started.disconnect(on_started)
        request_finished.disconnect(on_finished)
    assert post_json("/events", event_payload(), signals=True).status_code == 201
    assert calls == [("started", "/events"), ("finished", "ShortStackWSGIHandler")]


@pytest.mark.django_db(transaction=True)
def test_a_single_event_leaves_no_reference_cycles_with_the_request_signals(dev_mode):
    """The same without disconnecting close_old_connections (as under gunicorn): the
    response's close, done without the signal, frees the response too."""
    post_json("/events", event_payload(), signals=True)
    gc.collect()
    gc.disable()
    try:
        assert post_json("/events", event_payload(), signals=True).status_code == 201
        assert gc.collect() == 0
    finally:
        gc.enable()
