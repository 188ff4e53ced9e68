"""Event totals (per bucket and type, without device and country), which unfiltered views read:
exact after folds, late events, duplicates, rebuilds and their migration."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal
from types import SimpleNamespace

from django.core.cache import cache
from django.db import connection

from reports.filters import DashboardFilters, filters_from_query
from reports.models.grains import EVENT_TOTAL, GRAINS
from reports.selectors import pages
from reports.services.rollups import rollups_rebuild
from tests.factories import EventFactory
from tests.rollup_scaffold import (
    LATER,
    NOW,
    advance,
    assert_event_totals_exact,
    event_metrics_summed,
    event_resend,
    event_totals,
)


def _event_totals_dataset() -> None:
    """Several devices and countries per bucket, purchases, warnings, ties on received_at."""
    for index, (device, country) in enumerate(
        [("mobile", "US"), ("desktop", "US"), ("mobile", "DE"), ("tablet", "FR")] * 6
    ):
        EventFactory(
            event_type=("page_view", "product_view", "add_to_cart", "purchase")[index % 4],
            revenue=Decimal("4.25") if index % 4 == 3 else None,
            device_type=device,
            country=country,
            warnings=[{"field": "page_url", "rule": "w", "message": "w"}] if index % 5 == 0 else [],
            timestamp=NOW - dt.timedelta(hours=5 * index, minutes=index),
            received_at=NOW - dt.timedelta(seconds=index % 3),
        )


def test_event_totals_follow_folds_late_events_and_duplicates(db):
    """Unfiltered views read the event totals: after folds in small batches, a late event into
    an old bucket and a resent duplicate, they hold exactly the event metrics summed over
    device and country, and the raw events."""
    _event_totals_dataset()
    advance(batch=5)
    assert_event_totals_exact()
    late = EventFactory(
        event_type="purchase",
        revenue=Decimal("9.99"),
        device_type="tablet",
        country="BR",
        timestamp=NOW - dt.timedelta(days=6, minutes=13),
        received_at=NOW + dt.timedelta(minutes=2),
    )
    event_resend(late)
    assert advance(now=LATER + dt.timedelta(minutes=5)) == 1
    assert_event_totals_exact()
    late_day = (late.timestamp.replace(hour=0, minute=0, second=0, microsecond=0), "purchase")
    assert event_totals("day")[late_day] == (1, 0, Decimal("9.99"))


def test_event_totals_are_repaired_by_partial_and_full_rebuilds(db):
    """`rebuild_rollups --since` recomputes the totals' buckets from that day on, and a full
    rebuild empties and refolds them: damaged totals are exact again."""
    _event_totals_dataset()
    advance()
    since = (NOW - dt.timedelta(days=2)).date()
    since_at = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    for model in EVENT_TOTAL.values():
        assert model.objects.filter(bucket__lt=since_at).exists()
        assert model.objects.filter(bucket__gte=since_at).update(events=999, warned=999)
    rollups_rebuild(since=since, now=LATER)
    assert_event_totals_exact()
    for model in EVENT_TOTAL.values():
        model.objects.update(events=999, revenue=Decimal("1.00"))
        model.objects.create(bucket=NOW - dt.timedelta(days=400), event_type="page_view", events=7)
    rollups_rebuild(now=LATER)
    assert_event_totals_exact()


def test_unfiltered_event_reads_come_from_the_totals(db):
    """An unfiltered overview reads the event totals (the cheap table); a device filter reads
    the per-device-and-country metrics. Damaging the totals shows only in the unfiltered view,
    so the routing is real and the two reads are cached apart."""
    _event_totals_dataset()
    advance()
    everything = filters_from_query({"preset": "7d"}, now=NOW)
    mobile = filters_from_query({"preset": "7d", "device": "mobile"}, now=NOW)

    def events(f: DashboardFilters) -> int:
        return pages.overview(f)["kpis"]["events"]["value"]

    assert (events(everything), events(mobile)) == (24, 12)
    EVENT_TOTAL["day"].objects.update(events=100)
    cache.clear()
    days = (
        EVENT_TOTAL["day"]
        .objects.filter(bucket__gte=everything.start, bucket__lt=everything.end)
        .count()
    )
    assert events(everything) == 100 * days
    assert events(mobile) == 12


def test_migration_fills_event_totals_from_existing_event_metrics(db):
    """Deploying migration 0009 fills the totals from the event metrics already folded, so the
    unfiltered dashboards do not go empty until a rebuild."""
    migration = importlib.import_module("reports.migrations.0009_event_totals")
    _event_totals_dataset()
    advance()
    expected = {grain: event_totals(grain) for grain in GRAINS}
    for model in EVENT_TOTAL.values():
        model.objects.all().delete()
    migration.event_totals_fill(None, SimpleNamespace(connection=connection))
    for grain in GRAINS:
        assert event_totals(grain) == expected[grain] == event_metrics_summed(grain)
    assert_event_totals_exact()
