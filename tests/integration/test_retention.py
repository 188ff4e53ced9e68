"""The retention task: on the beat schedule, off by default (0 days keeps rows forever), and
removing old rows in bounded batches of every kind."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Event, RejectedEvent
from governance.tasks import retention_enforce_task
from quality.services import intake
from reports.services.rollups import rollups_advance
from tests.factories import EventFactory, RejectedEventFactory

pytestmark = pytest.mark.postgres


@pytest.fixture
def old_and_new(require_postgres, db) -> None:
    now = timezone.now()
    for days in (40, 35, 31, 2, 1):
        EventFactory.create_batch(3, received_at=now - dt.timedelta(days=days))
        RejectedEventFactory(received_at=now - dt.timedelta(days=days))
    rollups_advance(now=now)
    intake.intake_advance(now=now)


def test_the_task_is_on_the_beat_schedule():
    entry = django_settings.CELERY_BEAT_SCHEDULE["governance-retention-enforce"]
    assert entry["task"] == "governance.retention_enforce"


def test_nothing_is_removed_by_default(old_and_new):
    assert set(retention_enforce_task.delay().get().values()) == {0}
    assert Event.objects.count() == 15 and RejectedEvent.objects.count() == 5


def test_old_rows_go_in_bounded_batches(old_and_new, settings):
    """Each DELETE removes at most RETENTION_BATCH_ROWS rows; a second pass finds nothing."""
    settings.RETENTION_EVENTS_DAYS = 30
    settings.RETENTION_QUARANTINE_DAYS = 30
    settings.RETENTION_BATCH_ROWS = 2
    with CaptureQueriesContext(connection) as queries:
        removed = retention_enforce_task.delay().get()
    assert (removed["events"], removed["quarantine"]) == (9, 3)
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE FROM events_")]
    assert len(deletes) == 5 + 2  # ceil(9 / 2) and ceil(3 / 2)
    assert all(sql.split(" IN (")[1].count(",") <= 1 for sql in deletes)  # 2 ids at most
    assert Event.objects.count() == 6 and RejectedEvent.objects.count() == 2
    assert set(retention_enforce_task.delay().get().values()) == {0}
