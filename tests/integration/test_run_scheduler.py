"""`run_scheduler`, the demo's stand-in for celery beat, runs every beat entry in-process."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from quality.models import CheckRun
from quality.services.defaults import defaults_load
from reports.models import EventMetricHourly, RollupWatermark
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def test_run_scheduler_once_folds_rollups_and_runs_due_checks(settings):
    """One pass rolls received events into the hourly table and runs the due quality checks."""
    settings.ROLLUP_SAFETY_LAG_SECONDS = 0
    defaults_load()
    received = timezone.now() - dt.timedelta(minutes=2)
    EventFactory.create_batch(5, received_at=received)
    out = StringIO()

    call_command("run_scheduler", "--once", stdout=out)

    assert sum(EventMetricHourly.objects.values_list("events", flat=True)) == 5
    assert RollupWatermark.objects.get().events_rolled_up == 5
    assert CheckRun.objects.exists()
    assert "reports-rollups-advance" in out.getvalue()
    assert "quality-run-scheduled" in out.getvalue()
