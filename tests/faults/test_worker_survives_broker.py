"""A Celery worker keeps consuming after its Redis is killed under an unacknowledged task.

kombu 5.7.0 (newest) crashes the worker in that case: "Restoring 1 unacknowledged message(s)"
then `Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")`.
analytics_site.celery_restore_guard works around it; the first test shows the bug without the
guard, the second that with it the same worker runs tasks again once Redis is back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.conftest import ROOT, _worker_env

pytestmark = [
    pytest.mark.faults,
    pytest.mark.celery_worker,
    pytest.mark.usefixtures("require_postgres"),
]

CRASH = "'NoneType' object has no attribute 'hostname'"


def _worker_start(own_redis, queue: str, log: Path, guard: bool, database: str):
    env = _worker_env(database, queue)
    env["REDIS_URL"] = own_redis.url
    env["CELERY_REDIS_RESTORE_GUARD"] = "true" if guard else "false"
    command = [sys.executable, "-m", "celery", "-A", "tests.faults.celery_app", "worker"]
    command += ["--pool=prefork", "--concurrency=1", "--loglevel=INFO", "-Q", queue]
    command += ["--without-gossip", "--without-mingle"]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _ping(app: Celery, queue: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if app.send_task("analytics_site.ping", queue=queue).get(timeout=3) == "pong":
                return True
        except Exception:  # broker still down or worker still reconnecting
            time.sleep(0.5)
    return False


def _kill_redis_under_a_running_task(own_redis, worker, queue: str, log: Path) -> Celery:
    # Not the current app: later tests send through the project app, not to this dead Redis.
    app = Celery(broker=own_redis.url, backend=own_redis.url, set_as_current=False)
    assert _ping(app, queue, 30), log.read_text(errors="replace")[-3000:]
    started_key = f"started-{uuid.uuid4().hex[:8]}"
    app.send_task("tests.faults.sleep", args=[4, started_key], queue=queue)
    client = redis.Redis.from_url(own_redis.url)
    deadline = time.monotonic() + 15
    while not client.exists(started_key):
        assert time.monotonic() < deadline, "the acks_late task did not start"
        time.sleep(0.1)
    own_redis.kill()
    time.sleep(1)
    own_redis.start()
    return app


@pytest.fixture
def worker_run(own_redis, transactional_db, tmp_path):
    from django.db import connection

    started = []

    def run(guard: bool):
        queue = f"fault-{uuid.uuid4().hex[:8]}"
        log = tmp_path / f"worker-{len(started)}.log"
        worker = _worker_start(own_redis, queue, log, guard, str(connection.settings_dict["NAME"]))
        started.append(worker)
        return worker, queue, log

    yield run
    for worker in started:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def test_without_the_guard_kombu_kills_the_worker(own_redis, worker_run):
    """The upstream bug, reproduced: the worker exits after restoring the unacked message."""
    worker, queue, log = worker_run(guard=False)
    _kill_redis_under_a_running_task(own_redis, worker, queue, log)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip("kombu's restore crash did not happen this time (it is timing-dependent)")
    output = log.read_text(errors="replace")
    assert "Restoring 1 unacknowledged message(s)" in output
    assert CRASH in output


def test_with_the_guard_the_worker_runs_tasks_again_after_redis_returns(own_redis, worker_run):
    """The same fault with the guard on (the default): no crash, and the same worker process
    answers a ping once Redis is back, without any manual step."""
    worker, queue, log = worker_run(guard=True)
    app = _kill_redis_under_a_running_task(own_redis, worker, queue, log)
    assert _ping(app, queue, 45), log.read_text(errors="replace")[-3000:]
    assert worker.poll() is None, "the worker exited"
    assert CRASH not in log.read_text(errors="replace")


def test_the_guard_is_on_by_default():
    """Production runs with the guard unless CELERY_REDIS_RESTORE_GUARD=false is set."""
    from django.conf import settings

    assert os.environ.get("CELERY_REDIS_RESTORE_GUARD") is None
    assert settings.CELERY_REDIS_RESTORE_GUARD is True
