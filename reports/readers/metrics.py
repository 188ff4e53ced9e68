"""Additive numbers: rollup rows in the period plus the tail's events (events, revenue, warned
events, products, categories, per device or country)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum

from reports import raw, rollups
from reports.filters import DashboardFilters
from reports.readers.tail import in_period, memo, moment, rollup_cached, tail
from reports.readers.tail_summary import HOUR_US, Period, tail_summary


def event_buckets(filters: DashboardFilters) -> list[dict[str, Any]]:
    """Rows of (bucket, event_type, events, revenue, warned); a key may repeat (rollup, tail)."""
    model = rollups.EVENT_METRIC[filters.bucket]

    def rolled() -> list[dict[str, Any]]:
        rows = (
            in_period(model.objects.all(), filters)
            .values("bucket", "event_type")
            .annotate(events=Sum("events"), warned=Sum("warned"), revenue=Sum("revenue"))
            .order_by()
        )
        return [{**row, "bucket": row["bucket"].astimezone(dt.UTC)} for row in rows]

    result = list(rollup_cached("event_buckets", filters, rolled))
    summary = tail_summary()
    if summary is None:
        return result + raw.event_bucket_rows(raw.events_in(filters, tail()), filters.bucket)
    cells: dict[tuple[int, str], dict[str, Any]] = {}
    size = HOUR_US if filters.bucket == "hour" else 24 * HOUR_US
    period = Period(filters)
    for (hour, event_type, device, country), (n, warned, revenue) in summary.events.items():
        if not period.matches(hour, device, country):
            continue
        key = (hour - hour % size, event_type)
        cell = cells.setdefault(key, {"events": 0, "revenue": Decimal(0), "warned": 0})
        cell["events"] += n
        cell["warned"] += warned
        cell["revenue"] += revenue
    tail_rows = [
        {"bucket": moment(bucket), "event_type": event_type, **cell}
        for (bucket, event_type), cell in cells.items()
    ]
    return result + tail_rows


def dimension_events(filters: DashboardFilters, field: str) -> dict[str, int]:
    model = rollups.EVENT_METRIC[filters.bucket]

    def rolled() -> dict[str, int]:
        rows = in_period(model.objects.all(), filters).values(field).annotate(n=Sum("events"))
        return {row[field]: row["n"] for row in rows.order_by()}

    totals: dict[str, int] = defaultdict(int, rollup_cached(f"events_by_{field}", filters, rolled))
    summary = tail_summary()
    if summary is not None:
        position = 2 if field == "device_type" else 3
        period = Period(filters)
        for key, (n, _, _) in summary.events.items():
            if period.matches(key[0], key[2], key[3]):
                totals[key[position]] += n
        return dict(totals)
    for row in raw.dimension_rows(raw.events_in(filters, tail()), field):
        totals[row[field]] += row["events"]
    return dict(totals)


def product_rows(filters: DashboardFilters) -> list[dict[str, Any]]:
    """Rows of (product_id, category, event_type, events, revenue); keys may repeat. Once per
    read snapshot (top products and category revenue share it)."""
    key = f"product_rows:{filters.bucket}:{filters.start}:{filters.end}"
    return memo(f"{key}:{filters.device}:{filters.country}", lambda: _product_rows(filters))


def _product_sums(qs: QuerySet) -> list[dict[str, Any]]:
    return list(
        qs.values("product_id", "category", "event_type")
        .annotate(events=Sum("events"), revenue=Sum("revenue"))
        .order_by()
    )


def _whole_weeks(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[first Monday on or after start, last Monday on or before end): the UTC weeks wholly in
    a day-aligned period (empty when first >= last)."""
    first = start + dt.timedelta(days=(7 - start.weekday()) % 7)
    return first, end - dt.timedelta(days=end.weekday())


def _rolled_product_rows(filters: DashboardFilters) -> list[dict[str, Any]]:
    """The rollup part of product_rows. A device or country filter reads the product metrics;
    an unfiltered view the totals without them, and a day-bucketed period its whole weeks
    from the weekly totals and only the days at either end from the daily ones."""
    if filters.device or filters.country:
        return _product_sums(
            in_period(rollups.PRODUCT_METRIC[filters.bucket].objects.all(), filters)
        )
    if filters.bucket == "hour":
        return _product_sums(in_period(rollups.PRODUCT_TOTAL["hour"].objects.all(), filters))
    first, last = _whole_weeks(filters.start, filters.end)
    if first >= last:
        return _product_sums(in_period(rollups.PRODUCT_TOTAL["day"].objects.all(), filters))
    days = rollups.PRODUCT_TOTAL["day"].objects.filter(
        Q(bucket__gte=filters.start, bucket__lt=first) | Q(bucket__gte=last, bucket__lt=filters.end)
    )
    weeks = rollups.PRODUCT_TOTAL["week"].objects.filter(bucket__gte=first, bucket__lt=last)
    return _product_sums(days) + _product_sums(weeks)


def _product_rows(filters: DashboardFilters) -> list[dict[str, Any]]:
    rows = rollup_cached("products", filters, lambda: _rolled_product_rows(filters))
    summary = tail_summary()
    if summary is None:
        return list(rows) + raw.product_rows(raw.events_in(filters, tail()))
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    period = Period(filters)
    for (hour, *key, device, country), (n, revenue) in summary.products.items():
        if not period.matches(hour, device, country):
            continue
        cell = cells.setdefault(tuple(key), {"events": 0, "revenue": Decimal(0)})
        cell["events"] += n
        cell["revenue"] += revenue
    tail_rows = [
        {"product_id": product, "category": category, "event_type": event_type, **cell}
        for (product, category, event_type), cell in cells.items()
    ]
    return list(rows) + tail_rows


def category_revenue(filters: DashboardFilters) -> dict[str, Decimal]:
    """Purchase revenue per category, summed from the product rows of the same read (product
    rollups hold every purchase, with or without a product line): no second rollup query."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in product_rows(filters):
        if row["event_type"] == "purchase":
            totals[row["category"]] += row["revenue"]
    return dict(totals)
