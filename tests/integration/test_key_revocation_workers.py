"""A revoked key is refused by every gunicorn worker within a second (it used to work for up
to 10 s more in each worker that had it cached): two real workers, a real database."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from events import services
from tests.conftest import ROOT, _worker_env
from tests.factories import event_payload

PORT = 8361  # in this suite's port range
WORKERS = 2
REQUESTS = 40  # a fresh connection each, 8 at a time: a busy worker leaves the next to the other


@pytest.fixture
def two_workers(transactional_db, require_postgres):
    env = _worker_env(str(connection.settings_dict["NAME"]), "unused")
    command = [
        sys.executable, "-m", "gunicorn", "analytics_site.wsgi:application",
        "--bind", f"127.0.0.1:{PORT}", "--workers", str(WORKERS), "--log-level", "warning",
        "--no-control-socket",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, "gunicorn exited early"
            time.sleep(0.1)
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def _post(raw_key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
    try:
        conn.request(
            "POST",
            "/events",
            json.dumps(event_payload()),
            {"Content-Type": "application/json", "Authorization": f"Bearer {raw_key}"},
        )
        return conn.getresponse().status
    finally:
        conn.close()


def _post_many(raw_key: str) -> set[int]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return set(pool.map(_post, [raw_key] * REQUESTS))


def test_a_revoked_key_is_refused_by_every_worker_within_a_second(two_workers):
    created = services.ingestion_key_create(name="leaked", scopes=["write"])
    # Every worker has the key cached: all accepted, the last ones just before the revocation.
    assert _post_many(created.raw_key) == {201}
    services.ingestion_key_revoke(key_id=created.key.pk)
    time.sleep(1.0)
    assert _post_many(created.raw_key) == {401}


def test_a_rotated_key_works_on_every_worker_until_its_grace_ends(two_workers):
    """Rotation: both keys work meanwhile, then only the new one, on every worker."""
    created = services.ingestion_key_create(name="rotating", scopes=["write"])
    assert _post_many(created.raw_key) == {201}
    rotated = services.ingestion_key_rotate(key_id=created.key.pk, grace=dt.timedelta(seconds=2))
    assert {_post(created.raw_key) for _ in range(4)} == {201}
    time.sleep(2.5)
    assert _post_many(created.raw_key) == {401}
    assert _post_many(rotated.raw_key) == {201}
