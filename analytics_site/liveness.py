"""Worker liveness for /metrics: the age of each worker's last heartbeat.

Beat sends `analytics_site.worker_heartbeat` every WORKER_HEARTBEAT_SECONDS; the worker that runs
it records the time under its name in one Redis hash. The web process turns the hash into the
gauge `analytics_worker_heartbeat_age_seconds{worker=...}` at scrape time, so an alert on
"max age > 3 intervals" catches a dead worker, a dead beat and a dead broker alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis
from django.conf import settings
from prometheus_client.core import REGISTRY, GaugeMetricFamily

logger = logging.getLogger(__name__)

HEARTBEATS_KEY = "ops:worker_heartbeats"
FORGET_AFTER_SECONDS = 24 * 3600  # a worker silent for a day is gone, not dead


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)


def heartbeat_record(worker: str, now: float | None = None) -> None:
    """Record that `worker` ran a heartbeat now (no-op without Redis: tasks run eagerly)."""
    if not settings.REDIS_URL:
        return
    _client().hset(HEARTBEATS_KEY, worker, f"{now if now is not None else time.time():.3f}")


def heartbeat_ages(now: float | None = None) -> dict[str, float]:
    """Seconds since each worker's last heartbeat; empty when Redis is unreachable."""
    if not settings.REDIS_URL:
        return {}
    now = time.time() if now is None else now
    try:
        stored = _client().hgetall(HEARTBEATS_KEY)
    except redis.RedisError:
        return {}
    ages = {key.decode(): now - float(value) for key, value in stored.items()}
    return {worker: age for worker, age in ages.items() if age < FORGET_AFTER_SECONDS}


class WorkerHeartbeatCollector:
    """A Prometheus collector read at scrape time (no state kept in the web process)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "analytics_worker_heartbeat_age_seconds",
            "Seconds since the worker last ran the beat-scheduled heartbeat task",
            labels=["worker"],
        )
        for worker, age in sorted(heartbeat_ages().items()):
            gauge.add_metric([worker], round(age, 3))
        yield gauge


_registered = False


def collector_register() -> None:
    """Idempotent: registers the collector once per process."""
    global _registered
    if not _registered:
        REGISTRY.register(WorkerHeartbeatCollector())
        _registered = True
