"""PostgreSQL faults during ingestion, through the proxy in front of it: the database killed,
stalled, black-holed, and connections cut while batches insert. Each ends with the invariants
of the suite (stack_fixture.recovered): nothing acknowledged lost or stored twice, no 5xx but
503s, no hung request, dashboards equal to raw SQL, recovery with nobody restarting anything.
"""

from __future__ import annotations

import json
import random
import time

import pytest

from tests.faults.driver import Driver, event_new
from tests.faults.stack_fixture import recovered, stack  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.faults, pytest.mark.postgres]


def _timed_get(stack, path: str) -> tuple[int, float]:  # noqa: F811
    started = time.monotonic()
    try:
        status, _ = stack.get(path, timeout=5)
    except OSError:  # a timeout or a refused connection
        status = 0
    return status, time.monotonic() - started


def test_postgres_killed_during_ingestion(stack):  # noqa: F811
    """The database goes away (connections refused, open ones reset) and comes back."""
    with Driver(stack.web_port) as driver:
        time.sleep(3)
        stack.pg.kill()
        time.sleep(4)
        stack.pg.start()
        time.sleep(3)
    assert driver.record.statuses[503] > 0, "the outage was not seen"
    recovered(stack, driver)


def test_postgres_stalled_during_ingestion(stack):  # noqa: F811
    """The database accepts and never answers for longer than a client waits: requests end
    in a bounded 503 instead of hanging, and the liveness and readiness probes answer within
    a second (readiness says not ready)."""
    with Driver(stack.web_port) as driver:
        time.sleep(3)
        stack.pg.send("stall")
        time.sleep(1)
        probes = {path: _timed_get(stack, path) for path in ("/health/live", "/health/ready")}
        time.sleep(25)  # longer than the driver's request timeout
        stack.pg.send("pass")
        time.sleep(3)
    assert probes["/health/live"][0] == 200 and probes["/health/live"][1] < 1.0, probes
    assert probes["/health/ready"][0] == 503 and probes["/health/ready"][1] < 1.0, probes
    recovered(stack, driver)


def test_postgres_blackholed_during_ingestion(stack):  # noqa: F811
    """Bytes to the database vanish (a partition), then the network heals."""
    with Driver(stack.web_port) as driver:
        time.sleep(3)
        stack.pg.send("blackhole")
        time.sleep(25)
        stack.pg.send("pass")
        time.sleep(3)
    recovered(stack, driver)


def test_batch_connection_cut_mid_insert(stack):  # noqa: F811
    """Database connections reset again and again while batches insert: a batch is stored
    whole or not at all, and its resend does not store it twice."""
    with Driver(stack.web_port, threads=3, batch_every=1, batch_size=50) as driver:
        for _ in range(25):
            time.sleep(0.3)
            stack.pg.send("cut")
        time.sleep(2)
    assert driver.record.statuses[503] > 0, "no insert was cut"
    recovered(stack, driver)


def test_resent_batch_with_bad_events_is_quarantined_once(stack):  # noqa: F811
    """A client resends a batch whose answer it lost (our 503 says resending is safe), with
    connections cut meanwhile: its bad events have one quarantine row each, however many
    times they came."""
    rng = random.Random(5)
    driver = Driver(stack.web_port)
    batch = [event_new(rng, bad=n % 3 == 0) for n in range(12)]
    for _ in range(3):
        assert driver.send(batch, batch=True)
    with driver:
        for _ in range(10):
            time.sleep(0.4)
            stack.pg.send("cut")
            assert driver.send(json.loads(json.dumps(batch)), batch=True)
    recovered(stack, driver, quarantine=True)
