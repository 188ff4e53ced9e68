"""/metrics under a real gunicorn with two workers (gunicorn.conf.py: prometheus_client's
multiprocess mode): whichever worker answers a scrape, the ingestion counter is the sum over
all workers, so consecutive scrapes never go back, and it equals the requests sent."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from events.services import ingestion_key_create
from tests.conftest import ROOT, _worker_env
from tests.factories import event_payload

pytestmark = pytest.mark.usefixtures("require_postgres")

WORKER = "analytics_site.gunicorn_workers.KeepAliveThreadWorker"
BATCH_REQUESTS = re.compile(
    r'^django_http_requests_total_by_view_transport_method_total\{[^}]*view="events:batch"[^}]*\}'
    r" ([0-9.e+]+)$",
    re.MULTILINE,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=["configured-dir", "default-dir"])
def gunicorn_site(request, transactional_db, tmp_path):
    """The site under gunicorn (2 workers, the Procfile's worker class) on the test database,
    with PROMETHEUS_MULTIPROC_DIR set, or unset (gunicorn.conf.py makes a temporary one);
    yields (port, metrics directory or None)."""
    port = _free_port()
    env = {
        **_worker_env(str(connection.settings_dict["NAME"]), "unused"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    metrics_dir = None
    if request.param == "configured-dir":
        metrics_dir = tmp_path / "prometheus"
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    command = [
        sys.executable, "-m", "gunicorn", "analytics_site.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--threads", "2", "--worker-class", WORKER, "--no-control-socket",
        "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, "gunicorn exited early"
            try:
                if _request(port, "GET", "/health")[0] in (200, 503):
                    break
            except OSError:
                time.sleep(0.2)
        yield port, metrics_dir
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _request(port: int, method: str, path: str, body=None, headers=None) -> tuple[int, str]:
    """One request on a new connection, so the two workers take turns accepting them."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        client.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        response = client.getresponse()
        return response.status, response.read().decode()
    finally:
        client.close()


def _batch_requests(port: int) -> float:
    status, text = _request(port, "GET", "/metrics")
    assert status == 200, text[:300]
    return sum(float(value) for value in BATCH_REQUESTS.findall(text))


def test_the_ingestion_counter_never_goes_back_across_workers(gunicorn_site):
    port, metrics_dir = gunicorn_site
    key = ingestion_key_create(name="metrics test")
    headers = {"Authorization": f"Bearer {key.raw_key}", "Content-Type": "application/json"}
    scrapes = []
    sent = 0

    def post_batch(_: int) -> None:
        body = json.dumps({"events": [event_payload(), event_payload()]})
        status, text = _request(port, "POST", "/events/batch", body, headers)
        assert status in (200, 201, 207), text[:300]

    def processes_counted() -> int:
        if metrics_dir is None:
            return 2
        return len({path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")})

    # Concurrent connections, so that both workers accept some; more rounds (bounded) when the
    # kernel happened to hand every connection to one worker.
    with ThreadPoolExecutor(max_workers=6) as pool:
        for round_ in range(60):
            list(pool.map(post_batch, range(6)))
            sent += 6
            scrapes.append(_batch_requests(port))
            if round_ >= 9 and processes_counted() >= 2:
                break
    assert scrapes == sorted(scrapes), scrapes
    assert scrapes[-1] == sent
    # both workers served and counted: a values file per process
    assert processes_counted() >= 2
