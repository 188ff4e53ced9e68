"""Dashboard reads over the rollups and the raw tail: cached rollup reads follow every fold and
rebuild, events inside the safety lag are counted from the tail, quality blocks, live."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from quality.models import QualityIncident
from reports.filters import filters_from_query
from reports.models.grains import EVENT_TOTAL
from reports.selectors import pages
from reports.services.rollups import rollups_advance, rollups_rebuild
from tests.factories import EventFactory, RejectedEventFactory
from tests.rollup_scaffold import LATER, NOW, advance


def test_cached_rollup_reads_follow_every_fold_and_rebuild(require_postgres, db):
    """Rollup reads are cached per (generation, watermark): a fold or a rebuild is seen by the
    next read, never a stale number."""
    for minutes in (5, 50, 500):
        EventFactory(timestamp=NOW - dt.timedelta(minutes=minutes), received_at=NOW)
    advance()
    f = filters_from_query({}, now=NOW)

    def events() -> int:
        return pages.overview(f)["kpis"]["events"]["value"]

    assert events() == 3
    EventFactory(timestamp=NOW - dt.timedelta(days=2), received_at=NOW + dt.timedelta(minutes=1))
    assert events() == 4  # from the raw tail
    advance(now=LATER)
    assert events() == 4  # now from the rollup, under a new watermark
    # damage the rollup an unfiltered view reads, at the same watermark
    EVENT_TOTAL["day"].objects.update(events=100)
    cache.clear()
    assert events() == 200  # two damaged day rows are read, and cached
    rollups_rebuild(since=dt.date(2026, 3, 1), now=LATER)
    assert events() == 4  # the rebuild's new generation retires that cache entry


def test_events_inside_the_safety_lag_stay_in_the_tail_but_are_counted(require_postgres, db):
    """A just-received event is not folded yet (a concurrent ingestion transaction may still
    commit older received_at values), but the dashboard reads it from the raw tail."""
    now = timezone.now()
    EventFactory(timestamp=now - dt.timedelta(minutes=1), received_at=now)
    assert rollups_advance(now=now).events == 0
    f = filters_from_query({"preset": "24h"}, now=now)
    assert pages.overview(f)["kpis"]["events"]["value"] == 1


def test_quality_blocks_count_quarantine_and_warnings_and_link_incidents(require_postgres, db):
    """Each block says how much of its period was quarantined or warned, names the share of
    purchases held in quarantine, and lists the open incidents touching it (a revenue incident
    shows on overview and products, not on the funnel; a country incident on audience)."""
    for index in range(8):
        EventFactory(
            purchase=index < 4,
            timestamp=NOW - dt.timedelta(hours=index + 1),
            received_at=NOW - dt.timedelta(hours=index),
            warnings=[{"field": "page_url", "rule": "w", "message": "w"}] if index == 0 else [],
        )
    RejectedEventFactory(event_type="purchase", received_at=NOW - dt.timedelta(hours=2))
    RejectedEventFactory(event_type="purchase", received_at=NOW - dt.timedelta(days=30))  # outside
    RejectedEventFactory(event_type="page_view", received_at=NOW, status="replayed")  # not held
    advance()

    def incident(key: str, fields: list[str], event_types: list[str]) -> QualityIncident:
        return QualityIncident.objects.create(
            source_type="rule",
            source_key=key,
            title=key,
            opened_at=NOW,
            last_seen_at=NOW,
            fields=fields,
            event_types=event_types,
        )

    revenue = incident("rule:1", ["revenue"], ["purchase"])
    country = incident("rule:2", ["country"], [])
    f = filters_from_query({}, now=NOW)
    overview = pages.overview(f)["quality"]
    assert (overview["quarantined"], overview["warned"], overview["total"]) == (1, 1, 9)
    assert overview["quarantined_pct"] == pytest.approx(11.11)
    assert overview["note"].startswith("revenue excludes 20.0% of purchases")
    assert {i["id"] for i in overview["incidents"]} == {revenue.pk, country.pk}
    products = pages.products(f)["quality"]
    assert revenue.pk in {i["id"] for i in products["incidents"]}
    assert (products["quarantined"], products["total"]) == (1, 5)
    assert {i["id"] for i in pages.funnel(f)["quality"]["incidents"]} == {revenue.pk}
    assert country.pk in {i["id"] for i in pages.audience(f)["quality"]["incidents"]}


def test_live_counts_per_minute_zero_filled_and_lists_newest(require_postgres, db):
    """Live: 30 one-minute buckets ending with the current minute (events just before the
    window are left out), zeros where nothing happened, and the 20 newest events first."""
    now = dt.datetime(2026, 3, 10, 12, 30, 40, tzinfo=dt.UTC)
    EventFactory(timestamp=dt.datetime(2026, 3, 10, 12, 30, 5, tzinfo=dt.UTC), received_at=now)
    for second in (0, 59):
        EventFactory(timestamp=dt.datetime(2026, 3, 10, 12, 1, second, tzinfo=dt.UTC))
    EventFactory(timestamp=dt.datetime(2026, 3, 10, 12, 0, 59, tzinfo=dt.UTC))  # outside
    for index in range(25):
        EventFactory(timestamp=now - dt.timedelta(hours=2, minutes=index))
    live = pages.live(now=now)
    minutes = live["per_minute"]
    assert len(minutes) == 30
    assert minutes[0] == {"minute": "2026-03-10T12:01:00+00:00", "count": 2}
    assert minutes[-1] == {"minute": "2026-03-10T12:30:00+00:00", "count": 1}
    assert sum(m["count"] for m in minutes) == 3
    assert len(live["newest"]) == 20
    stamps = [event["timestamp"] for event in live["newest"]]
    assert stamps == sorted(stamps, reverse=True)
    assert stamps[0] == dt.datetime(2026, 3, 10, 12, 30, 5, tzinfo=dt.UTC)
