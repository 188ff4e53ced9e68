"""A real Celery worker process consumes tasks from Redis."""

import pytest


@pytest.mark.celery_worker
def test_worker_runs_a_task_sent_through_redis(celery_worker):
    """The ping task round-trips through the broker to a separate worker process."""
    result = celery_worker.send_task(
        "analytics_site.ping", queue=celery_worker.conf.task_default_queue
    )
    assert result.get(timeout=10) == "pong"
