"""The app through PgBouncer 1.18 in transaction mode (DATABASE_POOL_MODE=transaction: no
prepared insert, no server-side cursor), and through a failover with a multi-host DATABASE_URL
(`target_session_attrs=read-write`): while no node accepts writes ingestion answers 503 with
Retry-After, never 500, and recovers by itself once the replica is promoted, with every event it
acknowledged stored exactly once (synchronous replication). Issue 15 §3, ADR 0022."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.pg_cluster import PgBouncer, PgCluster

ROOT = Path(__file__).resolve().parents[2]
PORT = 20830
BOUNCER_PORT = 20835
pytestmark = pytest.mark.postgres


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_REPLICA_URL")}
    env.update(
        DATABASE_URL=database_url,
        ENVIRONMENT="development",
        SECRET_KEY="pooler-test",
        INGEST_THROTTLE_ENABLED="false",
        CONN_MAX_AGE="600",
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def cluster():
    nodes = PgCluster(PORT).up(synchronous=True)
    try:
        nodes.primary.sql("CREATE DATABASE analytics")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=_env(nodes.primary.url("analytics"), DB_ROLE="worker"),
            check=True,
            capture_output=True,
            timeout=600,
        )
        yield nodes
    finally:
        nodes.down()


def _probe(env: dict[str, str], seconds: float, threads: int) -> subprocess.Popen:
    """Started and sending (returns once the probe says so)."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "ingest_probe.py"), str(seconds), str(threads)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "sending", process.stderr.read()[-3000:]
    return process


def _answers(process: subprocess.Popen) -> list[tuple[int, str | None, str]]:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err[-3000:]
    return [tuple(answer) for answer in json.loads(out.strip().splitlines()[-1])]


def _stored(cluster_node, ids: list[str]) -> Counter:
    rows = cluster_node.sql(
        "SELECT event_id::text FROM events_event WHERE event_id = ANY(%s::uuid[])",
        db="analytics",
        params=[ids],
    )
    return Counter(event_id for (event_id,) in rows)


def test_ingestion_through_pgbouncer_in_transaction_mode(cluster):
    bouncer = PgBouncer(cluster.root, BOUNCER_PORT, cluster.primary.port, pool_size=2)
    bouncer.start()
    try:
        env = _env(bouncer.url("analytics"), DATABASE_POOL_MODE="transaction")
        answers = _answers(_probe(env, seconds=6, threads=4))
    finally:
        bouncer.stop()
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) == {201}, statuses
    acked = [event_id for status, _, event_id in answers if status == 201]
    assert len(acked) > 20 and _stored(cluster.primary, acked) == Counter(acked)


def test_failover_answers_503_then_recovers_with_nothing_acknowledged_lost(cluster):
    primary, replica = cluster.primary, cluster.replica
    url = (
        f"postgres://postgres@127.0.0.1:{primary.port},127.0.0.1:{replica.port}/analytics"
        "?target_session_attrs=read-write"
    )
    process = _probe(_env(url, DB_CONNECT_TIMEOUT_SECONDS="1"), seconds=20, threads=3)
    time.sleep(4)
    primary.stop("fast")  # a synchronous commit is on the replica before it is acknowledged
    time.sleep(5)
    replica.promote()
    answers = _answers(process)
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) <= {201, 503}, statuses
    assert statuses[503] > 0, [a[:2] for a in answers]
    assert all(after == "5" for status, after, _ in answers if status == 503)
    assert answers[-1][0] == 201  # recovered by itself
    acked = [event_id for status, _, event_id in answers if status == 201]
    assert _stored(replica, acked) == Counter(acked)  # each acknowledged event once
