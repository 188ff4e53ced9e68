"""The client-side deadline of web processes on PostgreSQL (analytics_site/db_deadline.py):
a connection whose server stops answering mid-session raises OperationalError instead of
waiting for ever, and is closed, so nobody reuses it half-read; for a short hold afterwards new
connections fail at once instead of each waiting for connect_timeout."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.http import HttpResponse

from analytics_site.db_deadline import db_deadline_install, db_deadline_uninstall
from analytics_site.errors import DatabaseUnavailableMiddleware

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("require_postgres")]


def _connect(proxy) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=proxy.port,
        dbname=connection.settings_dict["NAME"],
        user=connection.settings_dict["USER"] or "postgres",
        autocommit=True,
    )


HOLD_SECONDS = 1.0


@pytest.fixture
def deadline():
    assert db_deadline_install(1.0, hold_seconds=HOLD_SECONDS)
    try:
        yield
    finally:
        db_deadline_uninstall()


@pytest.mark.django_db
def test_a_stalled_server_ends_the_wait_and_the_connection(postgres_proxy, deadline):
    conn = _connect(postgres_proxy)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    postgres_proxy.mode = "blackhole"  # the open connection's bytes are held: a stall
    with pytest.raises(psycopg.OperationalError, match="client deadline"):
        conn.execute("SELECT 2")
    assert conn.closed, "a connection cut mid-protocol must not be reused"
    postgres_proxy.mode = "forward"
    time.sleep(HOLD_SECONDS)
    with _connect(postgres_proxy) as fresh:  # new connections work again after the hold
        assert fresh.execute("SELECT 3").fetchone() == (3,)


@pytest.mark.django_db
def test_after_a_deadline_new_connections_fail_fast_for_the_hold(postgres_proxy, deadline):
    """A request that touches the database again after a timeout (and requests queued behind
    it) gets its answer at once instead of one connect_timeout per attempt."""
    conn = _connect(postgres_proxy)
    postgres_proxy.mode = "blackhole"
    with pytest.raises(psycopg.OperationalError, match="client deadline"):
        conn.execute("SELECT 1")
    postgres_proxy.mode = "forward"
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="not trying again yet"):
        _connect(postgres_proxy)
    assert time.monotonic() - started < 0.2, "a connection was attempted during the hold"
    time.sleep(HOLD_SECONDS)
    with _connect(postgres_proxy) as fresh:
        assert fresh.execute("SELECT 2").fetchone() == (2,)


@pytest.mark.django_db
def test_a_connect_timeout_starts_the_hold_too(postgres_proxy, deadline):
    postgres_proxy.mode = "blackhole"  # accepts TCP, never answers the startup packet
    with pytest.raises(psycopg.OperationalError, match="timeout expired"):
        psycopg.connect(
            host="127.0.0.1",
            port=postgres_proxy.port,
            dbname=connection.settings_dict["NAME"],
            user="postgres",
            connect_timeout=2,
        )
    postgres_proxy.mode = "forward"
    with pytest.raises(psycopg.OperationalError, match="not trying again yet"):
        _connect(postgres_proxy)


def test_a_refresh_stuck_on_the_database_does_not_hold_up_other_threads():
    """While one thread refreshes the rule set (its query may wait out the deadline), the
    others wait at most REFRESH_WAIT_SECONDS, then validate with the rule set already loaded."""
    from quality import rulesets

    rulesets._cached_key = ("loaded",)  # a rule set is loaded (the first load does wait)
    rulesets.ruleset_invalidate()
    answered = threading.Event()
    with rulesets._lock:  # the refreshing thread, stuck
        caller = threading.Thread(target=lambda: (rulesets.ruleset_current(), answered.set()))
        caller.start()
        assert answered.wait(rulesets.REFRESH_WAIT_SECONDS + 1.0), "queued behind the refresh"
    caller.join()
    rulesets._cached_key = rulesets._NEVER_LOADED


@pytest.mark.django_db
def test_a_query_within_the_deadline_is_untouched(postgres_proxy, deadline):
    with _connect(postgres_proxy) as conn:
        assert conn.execute("SELECT pg_sleep(0.2), 4").fetchone()[1] == 4


def test_only_the_web_role_gets_a_deadline():
    """Tests run as the web role (5 s); worker and beat keep statement_timeout alone (0: off)."""
    assert settings.DB_ROLE == "web" and settings.DB_CLIENT_TIMEOUT_SECONDS == 5.0
    assert db_deadline_install(0) is False


@pytest.mark.parametrize(("path", "kind"), [("/reports/", "text/plain"), ("/api/x", "json")])
def test_a_page_whose_database_gave_up_answers_503_with_retry_after(rf, path, kind):
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    error = OperationalError("the database did not answer within 5.0 s (client deadline)")
    response = middleware.process_exception(rf.get(path), error)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert kind in response["Content-Type"]
    assert b"5.0 s" not in response.content  # no driver text in the body
    assert middleware.process_exception(rf.get(path), ValueError("a bug")) is None
