"""Dashboard and API reads go to a real streaming replica when it is up and close enough behind,
and to the primary when it lags more than the bound or is down; the block's connection is the
primary again afterwards (issue 15 §2, ADR 0022)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.pg_cluster import PgCluster

ROOT = Path(__file__).resolve().parents[2]
PORT = 20810
pytestmark = pytest.mark.postgres

_INSERT = (
    "INSERT INTO events_event (event_id, event_type, timestamp, client_timestamp, received_at, "
    "user_id, session_id, device_type, country, page_url, referrer, product_id, category, "
    "currency, order_id, search_query, properties, warnings) VALUES (%s, 'page_view', now(), "
    "now(), now(), 'u', 's', 'desktop', 'US', '/', '', '', '', '', '', '', '{}', '[]')"
)


@pytest.fixture(scope="module")
def cluster():
    nodes = PgCluster(PORT).up()
    try:
        nodes.primary.sql("CREATE DATABASE analytics")
        _manage(nodes, "migrate", "--noinput", "-v", "0")
        yield nodes
    finally:
        nodes.down()


def _env(cluster: PgCluster, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{cluster.primary.port}/analytics",
        DATABASE_REPLICA_URL=f"postgres://postgres@127.0.0.1:{cluster.replica.port}/analytics",
        DATABASE_REPLICA_CHECK_SECONDS="0",
        ENVIRONMENT="development",
        SECRET_KEY="replica-test",
        DB_ROLE="worker",
        **extra,
    )
    return env


def _manage(cluster: PgCluster, *arguments: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=_env(cluster),
        check=True,
        capture_output=True,
        timeout=600,
    )


def _probe(cluster: PgCluster, max_lag: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "replica_probe.py")],
        cwd=ROOT,
        env=_env(cluster, DATABASE_REPLICA_MAX_LAG_SECONDS=max_lag),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _insert(cluster: PgCluster, count: int) -> None:
    for _ in range(count):
        cluster.primary.sql(_INSERT, db="analytics", params=[uuid.uuid4()])


def test_reads_follow_the_replica_and_fall_back_when_it_lags_or_is_down(cluster):
    _insert(cluster, 5)
    cluster.wait_caught_up()
    fresh = _probe(cluster, max_lag="1000")
    assert fresh["used"] and fresh["in_recovery_in_block"] and not fresh["in_recovery_after"]
    assert (fresh["stats_status"], fresh["page_status"], fresh["total_events"]) == (200, 200, 5)

    cluster.replica.sql("SELECT pg_wal_replay_pause()")
    _insert(cluster, 3)
    time.sleep(1.5)
    # Within a generous bound the replica answers, three events behind: it was the replica.
    stale = _probe(cluster, max_lag="1000")
    assert stale["used"] and stale["total_events"] == 5
    # Past the bound the primary answers.
    lagging = _probe(cluster, max_lag="0.5")
    assert not lagging["used"] and not lagging["in_recovery_in_block"]
    assert (lagging["stats_status"], lagging["total_events"]) == (200, 8)

    cluster.replica.sql("SELECT pg_wal_replay_resume()")
    cluster.replica.stop()
    down = _probe(cluster, max_lag="1000")
    assert not down["used"]
    assert (down["stats_status"], down["page_status"], down["total_events"]) == (200, 200, 8)
    cluster.replica.start()
