"""The Celery application. Broker and eager mode come from settings (REDIS_URL or not)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")

app = Celery("analytics_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="analytics_site.ping")
def ping() -> str:
    """Trivial round-trip task: proves a worker consumes from the broker."""
    return "pong"
