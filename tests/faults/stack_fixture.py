"""The `stack` fixture: the production-like stack (tests/faults/stack.py) on the test database,
which it sees only through the fault proxies. Tests read the same database directly to check.

Imported by the scenario modules (`from tests.faults.stack_fixture import stack`), so it is
only started by the fault suite.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.conftest import service_missing
from tests.faults.driver import Driver, event_new
from tests.faults.invariants import assert_dashboards_match_raw, assert_no_loss, wait_folded
from tests.faults.stack import Stack

LOGS = ("gunicorn", "worker", "beat0", "pg-proxy")


@pytest.fixture
def stack(require_postgres, require_redis, transactional_db, tmp_path) -> Iterator[Stack]:
    if not shutil.which("redis-server"):
        service_missing("needs redis-server on PATH: apt-get install redis-server")
    running = Stack(connection.settings_dict["NAME"], tmp_path / "stack")
    try:
        running.start()
        yield running
    finally:
        running.stop()
        for name in LOGS:  # shown by pytest when the test failed
            print(f"---- {name}.log (tail)\n{running.log(name)[-2500:]}")


def recovered(stack: Stack, driver: Driver, *, quarantine: bool = False) -> None:
    """After a fault healed, with nobody restarting anything: the web and the worker are the
    processes that were started, new events are acknowledged and folded, and the invariants
    hold with every dashboard number equal to raw SQL."""
    assert stack.web.poll() is None, "gunicorn exited"
    assert stack.worker.poll() is None, "the Celery worker exited:\n" + stack.log("worker")[-3000:]
    stack.wait_ready(timeout=60)
    assert driver.send([_probe(driver, n) for n in range(5)], batch=True), "probe not acked"
    wait_folded(timeout=90)
    assert_no_loss(driver.record, quarantine=quarantine)
    assert_dashboards_match_raw()


def _probe(driver: Driver, n: int) -> dict:
    return event_new(random.Random(10_000 + n))
