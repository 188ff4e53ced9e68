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
from governance.services.retention import retention_enforce
from governance.tasks import retention_enforce_task
from quality.services import intake
from reports.services.rollups import rollups_advance
from tests.factories import EventFactory, RejectedEventFactory, protocol_batch_store

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
    batches = [sql for sql in deletes if sql.startswith("DELETE FROM events_originalbatch")]
    assert len(batches) == 1  # nothing to remove: one (empty) pass, after the events
    deletes = [sql for sql in deletes if sql not in batches]
    assert len(deletes) == 5 + 2  # ceil(9 / 2) and ceil(3 / 2)
    assert all(sql.split(" IN (")[1].count(",") <= 1 for sql in deletes)  # 2 ids at most
    assert Event.objects.count() == 6 and RejectedEvent.objects.count() == 2
    assert set(retention_enforce_task.delay().get().values()) == {0}


def _batches_and_pointers() -> tuple[set[int], set[int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM events_originalbatch")
        batches = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT DISTINCT original_batch_id FROM events_event")
        pointed = {row[0] for row in cursor.fetchall()} - {None}
    return batches, pointed


def test_old_original_batches_go_after_their_events_and_never_before(
    require_postgres, db, settings
):
    """ADR 0041: a batch row older than the events' retention goes once none of its events is
    left; one whose old event the rollups do not hold yet (so it stays) is kept, as is a new
    one. No event ever points at a batch row that is gone (checked with SQL)."""
    settings.RETENTION_EVENTS_DAYS = 30
    now = timezone.now()
    old = protocol_batch_store(["u-1", "u-2"], received_at=now - dt.timedelta(days=40))
    rollups_advance(now=now)
    intake.intake_advance(now=now)
    not_held = protocol_batch_store(["u-3"], received_at=now - dt.timedelta(days=40))
    protocol_batch_store(["u-4"])
    batches, pointed = _batches_and_pointers()
    assert len(batches) == 3 and pointed == batches
    removed = retention_enforce(now=now, batch=1)
    assert (removed["events"], removed["original_batches"]) == (2, 1)
    assert not Event.objects.filter(pk__in=old).exists()
    assert Event.objects.filter(pk__in=not_held).exists()
    left, pointed = _batches_and_pointers()
    assert len(left) == 2 and pointed == left
    assert retention_enforce(now=now)["original_batches"] == 0  # idempotent
