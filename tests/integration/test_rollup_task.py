"""The periodic rollup task: it runs on a real worker and the beat schedule names it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from analytics_site.celery import app
from reports.models import EventMetricDaily
from reports.selectors.watermark import watermark_get
from reports.tasks import rollups_advance_task
from tests.factories import EventFactory


@pytest.mark.celery_worker
def test_periodic_task_folds_events_on_a_real_worker(celery_worker, require_postgres):
    """The scheduled task runs on a worker process and moves the watermark."""
    received = timezone.now() - dt.timedelta(minutes=5)
    for index in range(12):
        EventFactory(timestamp=received - dt.timedelta(hours=index), received_at=received)
    result = rollups_advance_task.delay().get(timeout=60)
    assert result["events"] == 12
    assert watermark_get().received_at == received
    assert sum(EventMetricDaily.objects.values_list("events", flat=True)) == 12


def test_beat_schedule_runs_the_registered_task():
    """The beat entry names the task the worker registers, every ROLLUP_INTERVAL_SECONDS."""
    entry = settings.CELERY_BEAT_SCHEDULE["reports-rollups-advance"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert entry["schedule"] == settings.ROLLUP_INTERVAL_SECONDS
