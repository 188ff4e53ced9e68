"""Product totals and weekly product rows (totals, and per device and per country), which
product views read: each equals its daily source summed, after folds, late events,
duplicates, partial and full rebuilds and their migrations."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterable
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import Sum

from events.models import Event
from reports.filters import filters_from_query
from reports.models import ProductMetricDaily, ProductTotalDaily, ProductTotalWeekly
from reports.models.grains import PRODUCT_EVENT_TYPES, PRODUCT_METRIC, PRODUCT_WEEK_BY
from reports.selectors import pages
from reports.services.rollups import rollups_rebuild
from tests.factories import EventFactory
from tests.rollup_scaffold import (
    LATER,
    NOW,
    advance,
    assert_rollup_exact,
    event_resend,
    events_under_watermark,
    utc_bucket,
)

DIMENSIONS = list(PRODUCT_WEEK_BY)


def _keys(field: str) -> tuple[str, ...]:
    return (field, "product_id", "category", "event_type")


def _dimension_weeks(field: str) -> dict:
    keys = _keys(field)
    rows = PRODUCT_WEEK_BY[field].objects.values("bucket", *keys, "events", "revenue")
    return {
        (row["bucket"], *(row[k] for k in keys)): (row["events"], row["revenue"]) for row in rows
    }


def _daily_rows_by_week(rows: Iterable[dict], keys: tuple[str, ...]) -> dict:
    """Daily product rows (events, revenue) summed per UTC week (Monday) and `keys`; weeks that
    sum to no events count as absent."""
    summed: dict = {}
    for row in rows:
        cell = summed.setdefault(
            (utc_bucket(row["bucket"], "week"), *(row[k] for k in keys)), [0, Decimal(0)]
        )
        cell[0] += row["events"]
        cell[1] += row["revenue"]
    return {key: tuple(cell) for key, cell in summed.items() if cell[0]}


def _dimension_weeks_from_daily(field: str) -> dict:
    """The daily product metrics summed per UTC week (Monday) and `field`, over the other."""
    keys = _keys(field)
    rows = PRODUCT_METRIC["day"].objects.values("bucket", *keys, "events", "revenue")
    return _daily_rows_by_week(rows, keys)


def _raw_dimension_weeks(field: str) -> dict:
    """The same from raw product events under the watermark (duplicates are stored once)."""
    summed: dict = {}
    for event in events_under_watermark(Event.objects.filter(event_type__in=PRODUCT_EVENT_TYPES)):
        key = (utc_bucket(event.timestamp, "week"), *(getattr(event, k) for k in _keys(field)))
        cell = summed.setdefault(key, [0, Decimal(0)])
        cell[0] += 1
        cell[1] += event.revenue or 0
    return {key: tuple(cell) for key, cell in summed.items()}


def _assert_dimension_weeks_exact() -> None:
    assert_rollup_exact(
        DIMENSIONS, _dimension_weeks, _dimension_weeks_from_daily, _raw_dimension_weeks
    )


def _dimension_week_dataset() -> None:
    """2026-02-15 (Sunday) .. 2026-03-09 (Monday): several weeks, devices and countries."""
    for index in range(30):
        EventFactory(
            event_type=("product_view", "add_to_cart", "purchase")[index % 3],
            product_id=f"sku_{index % 4}",
            category="books",
            revenue=Decimal("7.50") if index % 3 == 2 else None,
            device_type=("mobile", "desktop", "tablet")[index % 3 - index % 2],
            country=("US", "DE", "FR")[(index // 2) % 3],
            timestamp=NOW - dt.timedelta(hours=18 * index + 5),
            received_at=NOW - dt.timedelta(hours=18 * index),
        )


def test_product_totals_equal_product_metrics_summed_over_device_and_country(require_postgres, db):
    """Unfiltered product views read the totals table: it must hold exactly the per-device-and-
    country rows summed, and a filtered view must still see only its device."""
    for index, (device, country) in enumerate(
        [("mobile", "US"), ("desktop", "US"), ("mobile", "DE"), ("tablet", "FR")] * 3
    ):
        EventFactory(
            event_type=("product_view", "add_to_cart", "purchase")[index % 3],
            product_id=f"sku_{index % 2}",
            category="books",
            revenue=Decimal("5.00") if index % 3 == 2 else None,
            device_type=device,
            country=country,
            timestamp=NOW - dt.timedelta(hours=index),
            received_at=NOW,
        )
    advance()
    keys = ("bucket", "product_id", "category", "event_type")
    summed = {
        tuple(row[k] for k in keys): (row["e"], row["r"])
        for row in ProductMetricDaily.objects.values(*keys).annotate(
            e=Sum("events"), r=Sum("revenue")
        )
    }
    totals = {
        tuple(row[k] for k in keys): (row["events"], row["revenue"])
        for row in ProductTotalDaily.objects.values(*keys, "events", "revenue")
    }
    assert totals == summed and sum(e for e, _ in totals.values()) == 12
    f = filters_from_query({"preset": "7d"}, now=NOW)
    everything = pages.products(f)
    mobile = pages.products(filters_from_query({"preset": "7d", "device": "mobile"}, now=NOW))
    assert everything != mobile
    assert sum(row["count"] for row in everything["top_viewed"]) == 4
    assert sum(row["count"] for row in mobile["top_viewed"]) == 2


def test_weekly_product_totals_are_the_daily_totals_summed_after_folds_and_a_partial_rebuild(
    require_postgres, db
):
    """Unfiltered product views over days read whole weeks from the weekly totals: each week
    must hold exactly its days, after incremental folds (a late event included) and after a
    rebuild from a mid-week date (its week keeps the days before that date)."""
    for index in range(24):  # 2026-02-15 (Sunday) .. 2026-03-09 (Monday), two per day or so
        EventFactory(
            event_type=("product_view", "add_to_cart", "purchase")[index % 3],
            product_id=f"sku_{index % 4}",
            category="books",
            revenue=Decimal("7.50") if index % 3 == 2 else None,
            timestamp=NOW - dt.timedelta(hours=22 * index + 5),
            received_at=NOW - dt.timedelta(hours=22 * index),
        )
    advance()
    EventFactory(  # late: received now, a Wednesday of an earlier week
        event_type="purchase",
        product_id="sku_1",
        category="books",
        revenue=Decimal("3.00"),
        timestamp=dt.datetime(2026, 2, 25, 9, tzinfo=dt.UTC),
        received_at=NOW,
    )
    advance(now=LATER + dt.timedelta(minutes=1))
    keys = ("product_id", "category", "event_type")

    def weekly_from_daily() -> dict:
        rows = ProductTotalDaily.objects.values("bucket", *keys, "events", "revenue")
        return _daily_rows_by_week(rows, keys)

    def weekly() -> dict:
        rows = ProductTotalWeekly.objects.values("bucket", *keys).annotate(
            e=Sum("events"), r=Sum("revenue")
        )
        return {(row["bucket"], *(row[k] for k in keys)): (row["e"], row["r"]) for row in rows}

    assert len({key[0] for key in weekly()}) >= 4
    assert all(key[0].weekday() == 0 for key in weekly())
    assert weekly() == weekly_from_daily()
    rollups_rebuild(since=dt.date(2026, 2, 26), now=LATER + dt.timedelta(minutes=1))
    assert weekly() == weekly_from_daily()
    assert sum(events for events, _ in weekly().values()) == 25


def test_dimension_weeks_are_the_daily_product_metrics_summed_after_folds_and_rebuilds(db):
    """Device- or country-filtered product views over days read whole weeks from the weekly
    rows of that dimension: each must hold exactly its days (summed over the other dimension)
    after folds in small batches, a late event into an earlier week, a resent duplicate, a
    rebuild from a mid-week date (its week keeps the days before it) and a full rebuild of
    damaged rows."""
    _dimension_week_dataset()
    advance(batch=7)
    late = EventFactory(
        event_type="purchase",
        product_id="sku_1",
        category="books",
        revenue=Decimal("3.00"),
        device_type="mobile",
        country="BR",
        timestamp=dt.datetime(2026, 2, 25, 9, tzinfo=dt.UTC),  # a Wednesday weeks ago
        received_at=NOW,
    )
    event_resend(late)
    advance(now=LATER + dt.timedelta(minutes=1))
    for field in DIMENSIONS:
        weeks = _dimension_weeks(field)
        assert len({key[0] for key in weeks}) >= 4 and all(key[0].weekday() == 0 for key in weeks)
        assert len({key[1] for key in weeks}) >= 3
        assert sum(events for events, _ in weeks.values()) == 31
    _assert_dimension_weeks_exact()
    for model in PRODUCT_WEEK_BY.values():
        model.objects.filter(bucket__gte=dt.datetime(2026, 2, 23, tzinfo=dt.UTC)).update(events=999)
    rollups_rebuild(since=dt.date(2026, 2, 26), now=LATER + dt.timedelta(minutes=1))
    _assert_dimension_weeks_exact()
    for model in PRODUCT_WEEK_BY.values():
        model.objects.update(events=5, revenue=Decimal("1.00"))
    rollups_rebuild(now=LATER + dt.timedelta(minutes=1))
    _assert_dimension_weeks_exact()


@pytest.mark.parametrize(
    ("field", "value", "other"),
    [("device_type", "mobile", {"device": "tablet"}), ("country", "DE", {"country": "US"})],
)
def test_filtered_product_reads_take_whole_weeks_from_their_dimension_weeks(
    db, field, value, other
):
    """A device or a country filter alone over days with whole weeks reads them from the
    weekly rows of that dimension: damaging those rows shows in that view only (not in the
    unfiltered view, not in another value's, not with both filters, which read the daily
    metrics)."""
    _dimension_week_dataset()
    advance()
    query = {"start": "2026-02-13", "end": "2026-03-10"}  # Friday .. Tuesday: 3 whole weeks
    name = "device" if field == "device_type" else "country"
    both = {"device": "mobile", "country": "DE"}

    def viewed(**filters: str) -> int:
        f = filters_from_query({**query, **filters}, now=NOW)
        return sum(item["count"] for item in pages.products(f)["top_viewed"])

    before = {
        "this": viewed(**{name: value}),
        "other": viewed(**other),
        "both": viewed(**both),
        "all": viewed(),
    }
    assert before["this"] > 0 and before["other"] > 0
    damaged = PRODUCT_WEEK_BY[field].objects.filter(**{field: value}, event_type="product_view")
    assert damaged.update(events=100)
    cache.clear()
    assert viewed(**{name: value}) > before["this"]
    assert viewed(**other) == before["other"]
    assert viewed(**both) == before["both"]
    assert viewed() == before["all"]


@pytest.mark.parametrize(
    ("field", "module", "fill"),
    [
        ("device_type", "0011_product_device_weeks", "product_device_weeks_fill"),
        ("country", "0013_product_country_weeks", "product_country_weeks_fill"),
    ],
)
def test_migrations_fill_dimension_weeks_from_existing_product_metrics(db, field, module, fill):
    """Deploying migrations 0011 (devices) and 0013 (countries) fills the weekly rows from the
    daily product metrics already folded, so filtered views stay exact without a rebuild."""
    migration = importlib.import_module(f"reports.migrations.{module}")
    _dimension_week_dataset()
    advance()
    expected = _dimension_weeks(field)
    PRODUCT_WEEK_BY[field].objects.all().delete()
    getattr(migration, fill)(None, SimpleNamespace(connection=connection))
    assert _dimension_weeks(field) == expected == _dimension_weeks_from_daily(field)
    assert expected == _raw_dimension_weeks(field)
