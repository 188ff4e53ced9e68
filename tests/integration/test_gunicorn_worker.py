"""The keep-alive gthread worker (analytics_site/gunicorn_workers.py) under a real gunicorn:
every connection is served even when a busy client could keep the only thread, kept-alive and
pipelined requests are answered in order, and the worker stops cleanly."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from gunicorn.config import Config
from gunicorn.http import message

from analytics_site.gunicorn_workers import config_settle
from tests.conftest import ROOT

WORKER = "analytics_site.gunicorn_workers.KeepAliveThreadWorker"
TIMEOUT = 20  # seconds a socket may wait: far above any answer; only a hang reaches it


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server():
    """gunicorn with one worker of ONE thread, so that fairness between clients shows."""
    yield from _serve()


def _serve(*options: str):
    port = _free_port()
    command = [
        sys.executable, "-m", "gunicorn", "tests.gunicorn_app:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "1",
        "--worker-class", WORKER, "--keep-alive", "30", "--log-level", "warning",
        "--no-control-socket",  # gunicorn 27's default socket is one per user: runs would share it
        *options,
    ]  # fmt: skip
    env = {**os.environ, "ENVIRONMENT": "testing"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, "gunicorn exited early"
            time.sleep(0.1)
    yield port, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _get(connection: http.client.HTTPConnection) -> tuple[int, int]:
    """(request count, serving thread) of one GET on a kept-alive connection."""
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200
    count, thread = response.read().decode().split()
    return int(count), int(thread)


def test_a_busy_client_does_not_starve_another_on_a_single_thread(server):
    """Client A sends back to back; B's requests are answered after a few of A's at most, not
    after a whole turn of MAX_REQUESTS_PER_TURN (1000): the thread lets go of A's connection
    as soon as B's is queued."""
    port, _ = server
    stop = threading.Event()
    served_a: list[int] = []

    def busy_client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        while not stop.is_set() and len(served_a) < 100_000:
            served_a.append(_get(connection)[0])
        connection.close()

    busy = threading.Thread(target=busy_client)
    busy.start()
    waits = []
    try:
        while len(served_a) < 50:
            time.sleep(0.01)
        for _ in range(5):
            other = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
            a_before = served_a[-1]
            waits.append(_get(other)[0] - a_before)
            other.close()
            time.sleep(0.05)
    finally:
        stop.set()
        busy.join(timeout=TIMEOUT)
    assert max(waits) < 200, waits


def test_kept_alive_and_pipelined_requests_are_answered_in_order(server):
    port, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    counts = [_get(connection)[0] for _ in range(20)]
    assert counts == sorted(counts) and len(set(counts)) == 20
    connection.close()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        raw.sendall(request * 3)  # three requests in one write: the second and third are read ahead
        received = b""
        while received.count(b"HTTP/1.1 200") < 3:
            chunk = raw.recv(65536)
            assert chunk, "connection closed before three answers"
            received += chunk


def test_an_idle_kept_alive_connection_goes_back_to_the_poller(server):
    """A pauses longer than the linger time; B, on the single thread, is answered, then A's
    next request on the same connection is answered too."""
    port, _ = server
    first = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    second = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    a1 = _get(first)[0]
    time.sleep(0.05)
    b1 = _get(second)[0]
    a2 = _get(first)[0]
    assert a1 < b1 < a2
    first.close()
    second.close()


def test_the_worker_stops_on_sigterm(server):
    port, process = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    _get(connection)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0


@pytest.mark.parametrize(
    ("allowed", "scheme"), [("127.0.0.1", "https"), ("10.9.9.9", "http"), ("*", "https")]
)
def test_forwarded_proto_counts_only_from_allowed_peers_on_every_kept_alive_request(
    allowed, scheme
):
    """The worker remembers a connection's peer trust after its first request: every request
    on the connection, the first and the kept-alive ones, and a new connection, get the URL
    scheme from X-Forwarded-Proto exactly when the peer is in forwarded_allow_ips."""
    serving = _serve("--forwarded-allow-ips", allowed)
    port, _ = next(serving)
    try:
        seen = []
        for _ in range(2):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
            for _ in range(4):
                connection.request("GET", "/scheme", headers={"X-Forwarded-Proto": "https"})
                seen.append(connection.getresponse().read().decode())
            connection.request("GET", "/scheme")
            seen.append(connection.getresponse().read().decode())
            connection.close()
        assert seen == [scheme] * 4 + ["http"] + [scheme] * 4 + ["http"]
    finally:
        next(serving, None)


def test_gunicorn_parses_requests_with_its_c_parser():
    """gunicorn-h1c (requirements/base.txt) is installed and new enough for gunicorn to use
    it: its 'auto' parser setting falls back to the Python parser silently otherwise."""
    cfg = Config()
    config_settle(cfg)
    assert message._check_fast_parser(cfg)


def test_a_settled_configuration_reads_the_same_settings():
    """The worker settles its copy of the configuration: every setting reads as before (now a
    plain attribute), and Config's own properties still compute from them."""
    cfg = Config()
    cfg.set("threads", 3)
    cfg.set("forwarded_allow_ips", "10.0.0.1,10.0.0.2")
    cfg.set("worker_class", WORKER)
    before = {name: getattr(cfg, name) for name in cfg.settings}
    config_settle(cfg)
    assert {name: getattr(cfg, name) for name in cfg.settings} == before
    assert vars(cfg)["threads"] == 3
    assert not cfg.is_ssl
    assert cfg.worker_class.__name__ == "KeepAliveThreadWorker"
    assert [str(net) for net in cfg.forwarded_allow_networks()] == ["10.0.0.1/32", "10.0.0.2/32"]
