"""The client-side deadline of web processes on PostgreSQL (analytics_site/db_deadline.py):
a connection whose server stops answering mid-session raises OperationalError instead of
waiting for ever, and is closed, so nobody reuses it half-read."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from analytics_site.db_deadline import db_deadline_install, db_deadline_uninstall

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("require_postgres")]


def _connect(proxy) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=proxy.port,
        dbname=connection.settings_dict["NAME"],
        user=connection.settings_dict["USER"] or "postgres",
        autocommit=True,
    )


@pytest.fixture
def deadline():
    assert db_deadline_install(1.0)
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
    with _connect(postgres_proxy) as fresh:  # new connections work again
        assert fresh.execute("SELECT 3").fetchone() == (3,)


@pytest.mark.django_db
def test_a_query_within_the_deadline_is_untouched(postgres_proxy, deadline):
    with _connect(postgres_proxy) as conn:
        assert conn.execute("SELECT pg_sleep(0.2), 4").fetchone()[1] == 4


def test_only_the_web_role_gets_a_deadline():
    """Tests run as the web role (5 s); worker and beat keep statement_timeout alone (0: off)."""
    assert settings.DB_ROLE == "web" and settings.DB_CLIENT_TIMEOUT_SECONDS == 5.0
    assert db_deadline_install(0) is False
