"""The events table partitioned by received_at (ADR 0021): an event_id is stored once however
far apart its copies arrive, partitions are made ahead (rows the default partition caught move
into theirs), and retention drops whole partitions only when the rollups hold their rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from events.models import Event, EventKey
from events.partitioning.catalog import event_partitions
from events.selectors import event_stats
from events.services import (
    DUPLICATE,
    IngestSource,
    event_batch_ingest,
    event_partitions_ensure,
    event_partitions_maintain,
)
from governance.services.retention import retention_enforce
from quality.services import intake
from reports.services.rollups import rollups_advance
from tests.factories import EventFactory, event_payload

pytestmark = pytest.mark.usefixtures("require_postgres")


def t(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


def _partition_of(event_id) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM events_event WHERE event_id = %s", [event_id]
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_duplicate_arriving_days_later_in_another_partition_is_not_stored():
    event_partitions_ensure(t(2026, 1, 1), t(2026, 3, 1))
    payload = event_payload(timestamp="2026-01-30T12:00:00+00:00")
    source = IngestSource(key_id=None)
    first = event_batch_ingest([payload], source=source, received_at=t(2026, 1, 30, 12))
    later = [
        event_batch_ingest([dict(payload)], source=source, received_at=t(2026, 2, day, 9))
        for day in (3, 20)
    ]
    assert first[0].status != DUPLICATE
    assert [outcome[0].status for outcome in later] == [DUPLICATE, DUPLICATE]
    assert Event.objects.filter(event_id=payload["event_id"]).count() == 1
    assert _partition_of(payload["event_id"]) == "events_event_p20260101"


@pytest.mark.django_db
def test_every_insert_path_claims_the_key_and_a_removed_event_stays_a_duplicate():
    """ORM and bulk inserts dedupe too (the trigger), and a key outlives its event: a resend
    after retention or erasure removed the event is not stored again."""
    stored = EventFactory(received_at=timezone.now())
    Event.objects.bulk_create(
        [Event(**{**_fields(stored), "received_at": timezone.now() + dt.timedelta(days=40)})],
        ignore_conflicts=True,
    )
    assert Event.objects.filter(event_id=stored.event_id).count() == 1
    assert EventKey.objects.filter(event_id=stored.event_id).exists()
    stored.delete()
    payload = event_payload(event_id=str(stored.event_id))
    outcome = event_batch_ingest([payload], source=IngestSource(key_id=None))
    assert outcome[0].status == DUPLICATE and not Event.objects.exists()


def _fields(event: Event) -> dict:
    names = [f.attname for f in Event._meta.concrete_fields if f.attname not in ("id", "txid")]
    return {name: getattr(event, name) for name in names}


@pytest.mark.django_db
def test_partitions_are_made_ahead_and_rows_caught_by_the_default_move_in():
    far = timezone.now() + dt.timedelta(days=200)
    early = EventFactory(received_at=far)
    assert _partition_of(early.event_id) == "events_event_default"
    created = event_partitions_maintain(now=far)
    assert created and _partition_of(early.event_id).startswith("events_event_p")
    assert Event.objects.filter(pk=early.pk).count() == 1
    assert event_partitions_maintain(now=far) == []  # idempotent
    ends = [p.end for p in event_partitions() if not p.is_default]
    assert max(ends) > far + dt.timedelta(days=31)


@pytest.mark.django_db
def test_retention_drops_whole_partitions_held_by_the_rollups(settings):
    """Feb and Mar lie wholly before the cutoff: dropped whole; April's old rows go in batches;
    the rollups keep the dashboards' history (ADR 0007); unfolded rows are never dropped."""
    now = t(2026, 6, 15)
    event_partitions_ensure(t(2026, 2, 1), t(2026, 7, 1))
    for received in (t(2026, 2, 10), t(2026, 3, 10), t(2026, 4, 20), t(2026, 6, 10)):
        EventFactory.create_batch(3, received_at=received, timestamp=received)
    rollups_advance(now=timezone.now())
    intake.intake_advance(now=timezone.now())
    before = event_stats()
    settings.RETENTION_EVENTS_DAYS = 50  # cutoff 2026-04-26
    removed = retention_enforce(now=now)
    assert removed["events"] == 9
    names = {p.name for p in event_partitions()}
    assert not names & {"events_event_p20260201", "events_event_p20260301"}
    assert {"events_event_p20260401", "events_event_p20260601"} <= names
    assert Event.objects.count() == 3
    after = event_stats()
    assert (after["total_events"], after["events_by_type"]) == (
        before["total_events"],
        before["events_by_type"],
    )
    # A row after the watermarks (not yet folded) keeps its partition.
    EventFactory(received_at=t(2026, 4, 2))
    settings.RETENTION_EVENTS_DAYS = 1
    retention_enforce(now=now)
    assert "events_event_p20260401" in {p.name for p in event_partitions()}
