"""The Celery application. Broker and eager mode come from settings (REDIS_URL or not)."""

import os

from celery import Celery, signals
from django.conf import settings

from analytics_site.celery_restore_guard import restore_guard_install
from analytics_site.liveness import heartbeat_record

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")

app = Celery("analytics_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _restore_guard_on_worker_init(**kwargs) -> None:
    """The worker's consumer is the process that restores unacked messages on a broker drop."""
    if settings.CELERY_REDIS_RESTORE_GUARD:
        restore_guard_install()


@app.task(name="analytics_site.ping")
def ping() -> str:
    """Trivial round-trip task: proves a worker consumes from the broker."""
    return "pong"


@app.task(name="analytics_site.worker_heartbeat", bind=True, ignore_result=True)
def worker_heartbeat(self) -> None:
    """Beat-scheduled: records that this worker consumes tasks (analytics_site.liveness)."""
    heartbeat_record(self.request.hostname or "in-process")  # run_scheduler applies it here
