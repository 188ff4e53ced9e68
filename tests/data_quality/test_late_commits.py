"""Exact numbers in any commit order (ADR 0011): rows that commit behind the rollups' watermark
in receive order (a batch held open past the safety lag while other traffic is folded, a
sample-data load of past days into a live database) are folded by the next runs, with no
rebuild, and every dashboard and intake number equals raw SQL. PostgreSQL, committed
transactions (`transactional_db`): the fold order is the inserting transaction's id."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from events.models import Event, RejectedEvent
from events.services import IngestSource, event_batch_ingest
from quality import selectors as quality_selectors
from quality.services import intake
from reports.selectors.watermark import events_after_watermark, watermark_get
from reports.services.rollups import rollups_advance
from tests.dashboard_reference import (
    NOW,
    assert_dashboard_matches_raw,
    filter_sets,
    generate_events,
    load,
)
from tests.factories import event_payload, purchase_payload
from tests.integration.test_intake_rollups import assert_reads_equal_raw

FOLD_NOW = NOW + dt.timedelta(minutes=5)  # past the safety lag of every event received by NOW
HELD_RECEIVED = NOW - dt.timedelta(hours=2)


def _fold_all() -> None:
    rollups_advance(now=FOLD_NOW, batch=500, max_seconds=120)
    intake.intake_advance(now=FOLD_NOW, batch=500, max_seconds=120)


def _assert_every_number_equals_raw() -> None:
    assert not events_after_watermark(watermark_get()).exists()
    assert not any(part.exists() for part in quality_selectors.intake_marks().events_after())
    assert not any(part.exists() for part in quality_selectors.intake_marks().rejected_after())
    for f in filter_sets():
        assert_dashboard_matches_raw(f)
    assert_reads_equal_raw(NOW)


def _held_payloads() -> list[dict]:
    at = (HELD_RECEIVED - dt.timedelta(minutes=3)).isoformat()
    good = [
        event_payload(timestamp=at, user_id=f"held_{index}", session_id=f"held_s{index % 3}")
        for index in range(8)
    ]
    good.append(purchase_payload(timestamp=at, user_id="held_buyer", session_id="held_s9"))
    bad = [event_payload(timestamp=at, country="not-a-country") for _ in range(3)]
    return good + bad


@pytest.mark.django_db(transaction=True)
def test_a_batch_committed_past_the_lag_while_traffic_is_folded_is_counted(require_postgres):
    """A batch received two hours ago holds its transaction open while the rollups fold other
    traffic past its receipt time; once it commits, the next folds take it: every dashboard
    number and every intake number (pass rate, quarantine, live) equals raw SQL."""
    load(generate_events())
    inserted, release, errors = threading.Event(), threading.Event(), []

    def held_batch() -> None:
        try:
            with transaction.atomic():
                outcomes = event_batch_ingest(
                    _held_payloads(),
                    source=IngestSource(ip="10.0.0.9"),
                    received_at=HELD_RECEIVED,
                )
                assert sorted({o.status for o in outcomes}) == ["accepted", "rejected"]
                inserted.set()
                release.wait(60)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            inserted.set()
        finally:
            connection.close()

    holder = threading.Thread(target=held_batch)
    holder.start()
    assert inserted.wait(60)
    _fold_all()  # the other traffic: folded while the batch is still open
    # Everything committed is folded, rows received after the batch included: a watermark in
    # receive order would now be past the batch.
    assert not events_after_watermark(watermark_get()).exists()
    assert Event.objects.filter(received_at__gt=HELD_RECEIVED).exists()
    assert not Event.objects.filter(user_id__startswith="held_").exists()
    release.set()
    holder.join(60)
    assert not errors and not holder.is_alive()
    held = Event.objects.filter(user_id__startswith="held_")
    assert held.count() == 9
    assert RejectedEvent.objects.filter(received_at=HELD_RECEIVED).count() == 3
    assert events_after_watermark(watermark_get()).count() == 9  # in the raw tail at once
    _fold_all()
    _assert_every_number_equals_raw()


@pytest.mark.django_db(transaction=True)
def test_sample_data_loaded_into_a_live_database_reaches_the_dashboards(require_postgres):
    """`generate_sample_data` writes ten days of past receipts into a database whose rollups
    have already moved past them: the next folds take them, no rebuild, and every number
    equals raw SQL. The load leaves fresh planner statistics behind (ANALYZE)."""
    load(generate_events())
    _fold_all()
    folded_before = watermark_get()
    call_command(
        "generate_sample_data",
        events=3000,
        seed=13,
        days=10,
        end=NOW,
        late_rate=0.05,
        duplicate_rate=0.05,
        workers=1,
        quiet=True,
    )
    assert Event.objects.filter(received_at__lt=folded_before.received_at).count() > 2000
    assert events_after_watermark(watermark_get()).count() > 2000
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
            "FROM pg_stat_user_tables WHERE relname = %s",
            [Event._meta.db_table],
        )
        assert cursor.fetchone()[0]
    _fold_all()
    _assert_every_number_equals_raw()
