"""A retention pass removes old raw rows in bounded batches and the dashboards keep their
history: every page's numbers are what they were before (the rollups hold the old periods),
recent numbers still equal raw SQL, and the raw tail after the watermarks is never touched."""

from __future__ import annotations

import datetime as dt

import pytest

from events.models import Event, RejectedEvent
from events.receive_order import after_q
from governance.services.retention import retention_enforce
from quality import selectors as quality_selectors
from quality.models import CheckRun, EventMinute, QualityIncident
from quality.services import intake
from reports.filters import filters_from_query
from reports.selectors import pages
from reports.selectors.watermark import watermark_get
from reports.services.rollups import rollups_advance, rollups_advance_batch
from tests.dashboard_reference import (
    NOW,
    filter_sets,
    generate_events,
    load,
    ref_series,
    ref_totals,
)
from tests.factories import QualityCheckFactory

pytestmark = pytest.mark.postgres

KEEP_DAYS = 7
CUTOFF = NOW - dt.timedelta(days=KEEP_DAYS)


def page_numbers() -> list:
    """Every page's data for every filter set (the selectors the views render), but what is
    read from raw rows on purpose (recent check runs, freshness, oldest rows)."""
    numbers = []
    for f in filter_sets():
        numbers.append(
            (
                pages.overview(f),
                pages.funnel(f, "country"),
                pages.funnel(f, "device"),
                pages.products(f),
                pages.audience(f),
                # freshness moves with the clock; check runs are raw rows retention removes
                {
                    k: v
                    for k, v in pages.quality_page(f).items()
                    if k not in ("freshness", "check_runs", "retention")
                },
            )
        )
    return numbers


def _quality_rows() -> None:
    check = QualityCheckFactory()
    for days in (30, 10, 1):
        moment = NOW - dt.timedelta(days=days)
        CheckRun.objects.create(
            quality_check=check, ran_at=moment, duration_ms=1, threshold=1, outcome="pass"
        )
        QualityIncident.objects.create(
            source_type="check",
            source_key=f"check:{days}",
            title="t",
            status="resolved",
            opened_at=moment,
            last_seen_at=moment,
            resolved_at=moment,
        )
    QualityIncident.objects.create(  # open: never removed
        source_type="check",
        source_key="check:open",
        title="t",
        opened_at=NOW - dt.timedelta(days=40),
        last_seen_at=NOW,
    )


@pytest.fixture
def dataset(require_postgres, db, settings) -> None:
    load(generate_events())
    _quality_rows()
    for name in ("EVENTS", "QUARANTINE", "CHECK_RUNS", "EVENT_MINUTES", "RESOLVED_INCIDENTS"):
        setattr(settings, f"RETENTION_{name}_DAYS", KEEP_DAYS)


def test_dashboards_keep_their_history_after_a_retention_pass(dataset):
    """Fully rolled up, then old rows removed in small batches: old periods keep their numbers
    (rollups), recent periods still equal raw SQL, and every old row of each kind is gone."""
    after = NOW + dt.timedelta(minutes=5)
    rollups_advance(now=after, max_seconds=60)
    intake.intake_advance(now=after, max_seconds=60)
    before = page_numbers()
    assert Event.objects.filter(received_at__lt=CUTOFF).exists()
    removed = retention_enforce(now=NOW, batch=97)
    assert removed["events"] > 97 and removed["quarantine"] > 0
    assert removed["check_runs"] == 2 and removed["resolved_incidents"] == 2
    assert not Event.objects.filter(received_at__lt=CUTOFF).exists()
    assert not RejectedEvent.objects.filter(received_at__lt=CUTOFF).exists()
    assert not EventMinute.objects.filter(bucket__lt=CUTOFF).exists()
    assert QualityIncident.objects.filter(source_key="check:open").exists()
    assert page_numbers() == before
    recent = filters_from_query({"start": "2026-03-04", "end": "2026-03-10"}, now=NOW)
    overview = pages.overview(recent)
    totals = ref_totals(recent)
    for name in overview["kpis"]:
        assert overview["kpis"][name]["value"] == pytest.approx(totals[name]), name
    assert overview["series"]["events"] == ref_series(recent)[1]
    assert retention_enforce(now=NOW, batch=97)["events"] == 0  # idempotent


def test_retention_never_removes_what_the_rollups_do_not_hold(dataset):
    """With the rollups behind (a raw tail after their fold positions), only old rows both
    rollup families hold go: the tails the dashboards read on top stay whole, numbers are kept."""
    after = NOW + dt.timedelta(minutes=5)
    rollups_advance_batch(now=after, batch=600)  # each folds part of the rows, in fold order
    intake.intake_advance_batch(now=after, batch=400)
    rollups, intake_events = watermark_get(), quality_selectors.intake_marks().events
    assert not rollups.is_start and not intake_events.is_start
    tail = after_q(rollups) | after_q(intake_events)
    kept_tail = Event.objects.filter(tail).count()
    assert kept_tail and Event.objects.exclude(tail).filter(received_at__lt=CUTOFF).exists()
    before = page_numbers()
    removed = retention_enforce(now=NOW, batch=50)
    assert removed["events"] > 0
    assert not Event.objects.exclude(tail).filter(received_at__lt=CUTOFF).exists()
    assert Event.objects.filter(tail).count() == kept_tail
    assert Event.objects.filter(tail, received_at__lt=CUTOFF).exists()  # not held yet: kept
    assert page_numbers() == before
