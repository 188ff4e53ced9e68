"""Health probes for load balancers and people, each bounded in time (issue 14).

Every probe runs in a small thread pool and is waited for at most HEALTH_TIMEOUT_SECONDS, so a
dependency that accepts connections and never answers (a black hole) makes its component
"down", not the request hang. A probe stuck in its thread frees it when the connect or socket
timeout ends (the database's connect_timeout, the Redis socket timeout); while all threads are
stuck, new probes report "down" at once. Bodies say only "ok" or "down": hosts, ports and
driver errors go to the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import redis
import structlog
from django.conf import settings
from django.db import connections

logger = structlog.get_logger(__name__)

_probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-probe")


def _database_probe() -> None:
    """A fresh connection of this probe thread, closed after: proves connect and query."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connections.close_all()


def _broker_probe() -> None:
    timeout = settings.HEALTH_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def _bounded(probes: dict[str, Callable[[], None]]) -> dict[str, dict[str, str]]:
    """Run the probes at once and wait for all of them together at most HEALTH_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + settings.HEALTH_TIMEOUT_SECONDS
    futures = {name: _probes.submit(probe) for name, probe in probes.items()}
    results = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            logger.warning("health.timeout", component=name)
            results[name] = {"status": "down"}
        except Exception as exc:  # any failure is "down"; the reason goes to the log only
            logger.warning("health.down", component=name, error=str(exc)[:200])
            results[name] = {"status": "down"}
        else:
            results[name] = {"status": "ok"}
    return results


def health_live() -> dict[str, Any]:
    """The process answers: nothing else is asked (a restart would not fix a dependency)."""
    return {"status": "ok"}


def health_ready() -> dict[str, Any]:
    """What the web process needs to serve: the database (ingestion works without Redis)."""
    database = _bounded({"database": _database_probe})["database"]
    return {"status": database["status"], "components": {"database": database}}


def health_full() -> dict[str, Any]:
    """Everything, for people: "ok", "degraded" (only Redis down: web still serves) or
    "down" (the database is down)."""
    if not settings.REDIS_URL:
        components = _bounded({"database": _database_probe})
        components["broker"] = {"status": "ok", "mode": "eager"}
    else:
        components = _bounded({"database": _database_probe, "broker": _broker_probe})
        components["broker"]["mode"] = "redis"
    if components["database"]["status"] != "ok":
        overall = "down"
    elif components["broker"]["status"] != "ok":
        overall = "degraded"
    else:
        overall = "ok"
    return {"status": overall, "components": components}
