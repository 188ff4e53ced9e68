"""Django's request signals on both request paths: the fast path does the work of Django's own
receivers itself while they are the only ones connected (analytics_site/fastpath/signals.py),
and must keep their semantics; with INGEST_FASTPATH off, Django sends the signals itself."""

from __future__ import annotations

import gc
import time

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection

from events.models import Event
from events.services import ingest
from tests.factories import event_payload
from tests.helpers import postgres_admin_connection

pytestmark = pytest.mark.django_db


def _backend_pid() -> int:
    return connection.connection.info.backend_pid


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_a_connection_past_its_max_age_is_replaced_before_the_next_request(ingest_client, dev_mode):
    """close_old_connections semantics without the signals: a persistent connection that has
    outlived CONN_MAX_AGE is closed when the next request starts, and that request stores
    its event on a new one."""
    assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
    old_pid = _backend_pid()
    assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
    assert _backend_pid() == old_pid  # kept between requests (CONN_MAX_AGE)
    connection.close_at = time.monotonic() - 1
    assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
    assert _backend_pid() != old_pid
    assert Event.objects.count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_a_connection_left_outside_autocommit_is_closed_when_the_request_finishes(
    ingest_client, dev_mode, monkeypatch
):
    """As close_old_connections on request_finished: a connection whose autocommit was not
    restored is dropped at the end of the request."""
    insert = ingest.events_insert

    def insert_and_leave_autocommit_off(rows):
        stored = insert(rows)
        connection.set_autocommit(False)
        return stored

    monkeypatch.setattr(ingest, "events_insert", insert_and_leave_autocommit_off)
    assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_a_terminated_backend_between_requests_is_replaced(ingest_client, dev_mode):
    """A persistent connection whose backend was ended between requests (database restart,
    pg_terminate_backend) is replaced: the event is stored, no 5xx."""
    assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
    stale_pid = _backend_pid()
    with postgres_admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [stale_pid])
    payload = event_payload()
    response = ingest_client.post_json("/events", payload, signals=True)
    assert response.status_code == 201, response.content
    assert _backend_pid() != stale_pid
    assert Event.objects.filter(event_id=payload["event_id"]).exists()
    assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_query_logs_are_reset_when_a_request_starts(ingest_client, dev_mode):
    """reset_queries semantics: queries logged before a request are gone from the log once
    it has run (DEBUG keeps a per-connection log)."""
    assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
    connection.queries_log.append({"sql": "SELECT 'before'", "time": "0.000"})
    assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
    assert {"sql": "SELECT 'before'", "time": "0.000"} not in connection.queries_log


@pytest.mark.django_db(transaction=True)
def test_other_receivers_of_the_request_signals_are_still_called(ingest_client, dev_mode):
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
        assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
    finally:
        request_started.disconnect(on_started)
        request_finished.disconnect(on_finished)
    assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
    handler = "ShortStackWSGIHandler" if ingest_client.fastpath else "WSGIHandler"
    assert calls == [("started", "/events"), ("finished", handler)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ingest_client", ["fastpath"], indirect=True)
def test_a_single_event_leaves_no_reference_cycles_with_the_request_signals(
    ingest_client, dev_mode
):
    """On the fast path, without disconnecting close_old_connections (as under gunicorn): the
    response's close, done without the signal, frees the response too."""
    ingest_client.post_json("/events", event_payload(), signals=True)
    gc.collect()
    gc.disable()
    try:
        assert ingest_client.post_json("/events", event_payload(), signals=True).status_code == 201
        assert gc.collect() == 0
    finally:
        gc.enable()
