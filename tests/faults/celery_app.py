"""The project's Celery app plus test-only tasks, for worker processes started by the fault
tests (`celery -A tests.faults.celery_app worker`)."""

from __future__ import annotations

import time

import redis
from django.conf import settings

from analytics_site.celery import app

__all__ = ["app"]


@app.task(name="tests.faults.sleep", acks_late=True)
def sleep_task(seconds: float, started_key: str) -> str:
    """An acks_late task that stays unacknowledged for `seconds`: the broker can die under it.
    It sets `started_key` in the broker's Redis first, so the test knows it is running."""
    redis.Redis.from_url(settings.REDIS_URL).set(started_key, "1")
    time.sleep(seconds)
    return "slept"


@app.task(name="tests.faults.count_run")
def count_run(key: str) -> None:
    """Beat-scheduled in the two-beats test: appends this run's time to the list `key`."""
    redis.Redis.from_url(settings.REDIS_URL).rpush(key, f"{time.time():.3f}")
