"""Two `celery beat` processes at once schedule each periodic task once (analytics_site.beat),
a follower takes over when the leader dies, and the worker heartbeat reaches /metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.conftest import ROOT, _worker_env

pytestmark = [
    pytest.mark.faults,
    pytest.mark.celery_worker,
    pytest.mark.usefixtures("require_postgres"),
]

LEASE_SECONDS = 3


def _process(kind: str, own_redis, queue: str, database: str, log: Path) -> subprocess.Popen:
    env = _worker_env(database, queue)
    env |= {"REDIS_URL": own_redis.url, "BEAT_LEADER_LEASE_SECONDS": str(LEASE_SECONDS)}
    env["WORKER_HEARTBEAT_SECONDS"] = "1"
    command = [sys.executable, "-m", "celery", "-A", "tests.faults.celery_app", kind]
    if kind == "worker":
        command += ["--pool=solo", "-Q", queue, "--without-gossip", "--without-mingle"]
    command += ["--loglevel=INFO"]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def stack(own_redis, transactional_db, tmp_path, settings):
    """A worker and two beats on a Redis of the test's own, counting one 1-second task."""
    from django.db import connection

    key = f"runs-{uuid.uuid4().hex[:8]}"
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    queue = f"beat-{uuid.uuid4().hex[:8]}"
    PeriodicTask.objects.create(
        name=key, task="tests.faults.count_run", interval=every_second,
        args=json.dumps([key]), queue=queue,
    )  # fmt: skip
    database = str(connection.settings_dict["NAME"])
    processes = {
        name: _process(kind, own_redis, queue, database, tmp_path / f"{name}.log")
        for name, kind in (("worker", "worker"), ("beat-a", "beat"), ("beat-b", "beat"))
    }
    settings.REDIS_URL = own_redis.url
    yield processes, redis.Redis.from_url(own_redis.url), key, tmp_path
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _runs(client: redis.Redis, key: str) -> list[float]:
    return [float(value) for value in client.lrange(key, 0, -1)]


def _assert_once_per_second(runs: list[float], logs: Path) -> None:
    """At most one run per second of the span: one beat sends the 1-second task once a tick
    (a loaded machine may delay a tick, and the next comes sooner: a short gap, not a double);
    two beats would each send it, about twice as many runs as seconds."""
    detail = "".join(p.read_text(errors="replace")[-1500:] for p in logs.glob("beat-*.log"))
    assert len(runs) >= 4, detail
    span = runs[-1] - runs[0]
    assert len(runs) - 1 <= span * 1.25 + 1, (len(runs), span, detail)


def test_two_beats_schedule_each_run_once_and_the_follower_takes_over(stack):
    processes, client, key, logs = stack
    deadline = time.monotonic() + 40
    while len(_runs(client, key)) < 8:
        assert time.monotonic() < deadline, "beat and worker did not run the task 8 times"
        time.sleep(0.5)
    _assert_once_per_second(_runs(client, key), logs)

    leader = client.get("ops:beat-leader").decode()
    name = next(
        name for name, p in processes.items() if name.startswith("beat") and f":{p.pid}:" in leader
    )
    processes[name].kill()  # the leader dies without releasing its lease
    before = len(_runs(client, key))
    deadline = time.monotonic() + LEASE_SECONDS + 20
    while len(_runs(client, key)) < before + 5:
        assert time.monotonic() < deadline, "the follower did not take over"
        time.sleep(0.5)
    runs = _runs(client, key)
    _assert_once_per_second(runs[before - 1 :], logs)
    assert client.get("ops:beat-leader").decode() != leader


def test_worker_heartbeat_age_is_in_metrics(stack):
    """Beat sends the heartbeat task every second (here); /metrics shows each worker's age."""
    _, client, _, _ = stack
    deadline = time.monotonic() + 40
    while not client.hlen("ops:worker_heartbeats"):
        assert time.monotonic() < deadline, "no heartbeat recorded"
        time.sleep(0.5)
    text = Client().get("/metrics").content.decode()
    lines = [line for line in text.splitlines() if line.startswith("analytics_worker_heartbeat")]
    assert lines, text[-2000:]
    worker, age = lines[0].rsplit(" ", 1)
    assert 'worker="celery@' in worker
    assert 0 <= float(age) < 30
