"""Timeouts: web processes give up on the database sooner than workers, both from settings;
ingestion keeps working while Redis black-holes (the throttle fails open after its timeout)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db import connection
from rest_framework.test import APIClient

from events.facade import events_all
from tests.conftest import ROOT, _worker_env
from tests.factories import event_payload

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("require_postgres")]


def _statement_timeout(role: str | None) -> str:
    env = _worker_env(str(connection.settings_dict["NAME"]), "unused")
    env.pop("DB_ROLE", None)
    if role:
        env["DB_ROLE"] = role
    code = (
        "import django; django.setup(); from django.db import connection; "
        "c = connection.cursor(); c.execute('SHOW statement_timeout'); print(c.fetchone()[0]); "
        "print(connection.get_connection_params()['connect_timeout'])"
    )
    env["DJANGO_SETTINGS_MODULE"] = "analytics_site.settings"
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert output.returncode == 0, output.stderr[-2000:]
    return " ".join(output.stdout.split())


def test_web_and_worker_processes_get_their_own_timeouts(db):
    """Web (the default role): 15 s statements, 3 s connect; worker: 10 min and 10 s."""
    assert _statement_timeout(None) == "15s 3"
    assert _statement_timeout("worker") == "10min 10"
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "15s"


@pytest.mark.django_db
def test_ingestion_works_while_redis_black_holes(redis_proxy, settings, ingestion_key):
    """Redis accepts TCP and never answers: events are still accepted (the throttle gives up
    after REDIS_SOCKET_TIMEOUT_SECONDS and fails open), so keeping the host is right."""
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": settings.REDIS_URL,
            "KEY_PREFIX": "faults",
        }
    }
    redis_proxy.mode = "blackhole"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingestion_key.raw_key}")
    response = client.post("/events", event_payload(), format="json")
    assert response.status_code == 201, response.content
    assert events_all().count() == 1
