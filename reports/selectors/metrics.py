"""Additive numbers: rollup rows in the period plus the tail's events (events, revenue, warned
events, products, categories, per device or country)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Round

from reports.filters import DashboardFilters, whole_weeks
from reports.models.grains import (
    EVENT_METRIC,
    EVENT_TOTAL,
    PRODUCT_METRIC,
    PRODUCT_TOTAL,
    PRODUCT_WEEK_BY,
)
from reports.selectors import raw_events
from reports.selectors.tail import in_period, memo, moment, rollup_cached, tail
from reports.selectors.tail_summary import HOUR_US, Period, tail_summary


def event_buckets(filters: DashboardFilters) -> list[dict[str, Any]]:
    """Rows of (bucket, event_type, events, revenue, warned); a key may repeat (rollup, tail).

    A device or country filter reads the event metrics; an unfiltered view the totals without
    them (90 days at 10M events: ~450 rows instead of ~31,000 to group)."""
    unfiltered = not (filters.device or filters.country)
    tables = EVENT_TOTAL if unfiltered else EVENT_METRIC
    model = tables[filters.bucket]

    def rolled() -> list[dict[str, Any]]:
        return _event_rows(in_period(model.objects.all(), filters), summed=not unfiltered)

    name = "event_totals" if unfiltered else "event_buckets"
    result = list(rollup_cached(name, filters, rolled))
    summary = tail_summary()
    if summary is None:
        return result + raw_events.event_bucket_rows(
            raw_events.events_in(filters, tail()), filters.bucket
        )
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


def _event_rows(qs: QuerySet, *, summed: bool) -> list[dict[str, Any]]:
    """(bucket, event_type, events, warned, revenue) of rollup rows, summed per bucket and type
    unless they are totals (one row each). PostgreSQL sends buckets as integer microseconds:
    Django parses timestamptz text (~7 µs a value); with the sums, that was most of a 90-day
    read of the totals (540 rows at 1M events: 4.3 ms, now 1.2)."""
    bucket = "bucket"
    if connection.vendor == "postgresql":
        bucket = "bucket_us"
        qs = qs.annotate(bucket_us=RawSQL("(EXTRACT(EPOCH FROM bucket) * 1000000)::bigint", []))
    if summed:
        rows = (
            qs.values(bucket, "event_type")
            .annotate(events=Sum("events"), warned=Sum("warned"), revenue=Sum("revenue"))
            .order_by()
        )
    else:
        rows = qs.values(bucket, "event_type", "events", "warned", "revenue")
    if bucket == "bucket":
        return [{**row, "bucket": row["bucket"].astimezone(dt.UTC)} for row in rows]
    return [{"bucket": moment(row.pop("bucket_us")), **row} for row in rows]


def _rolled_device_country_events(filters: DashboardFilters) -> dict[tuple[str, str], int]:
    """{(device, country): events} of the rollup part, once per snapshot: the audience page
    wants events per device and per country, and one pass over the period's rows (~31,000 at
    90 days) grouped by both costs about what one grouped by either does."""
    model = EVENT_METRIC[filters.bucket]

    def rolled() -> dict[tuple[str, str], int]:
        rows = (
            in_period(model.objects.all(), filters)
            .values_list("device_type", "country")
            .annotate(n=Sum("events"))
            .order_by()
        )
        return {(device, country): n for device, country, n in rows}

    key = f"events_by_device_country:{filters.bucket}:{filters.start}:{filters.end}"
    return memo(
        f"{key}:{filters.device}:{filters.country}",
        lambda: rollup_cached("events_by_device_country", filters, rolled),
    )


def dimension_events(filters: DashboardFilters, field: str) -> dict[str, int]:
    """Events of the period per device or per country (rollup rows plus the raw tail)."""
    position = 0 if field == "device_type" else 1
    totals: dict[str, int] = defaultdict(int)
    for key, n in _rolled_device_country_events(filters).items():
        totals[key[position]] += n
    summary = tail_summary()
    if summary is not None:
        period = Period(filters)
        for key, (n, _, _) in summary.events.items():  # (hour, type, device, country)
            if period.matches(key[0], key[2], key[3]):
                totals[key[2 + position]] += n
        return dict(totals)
    for row in raw_events.dimension_rows(raw_events.events_in(filters, tail()), field):
        totals[row[field]] += row["events"]
    return dict(totals)


# A product row: (product_id, category, event_type, events, revenue in integer cents); a key
# may repeat (rollup rows, tail). Revenue has two decimals everywhere (events and rollups), so
# cents are exact, and a 90-day read's ~4,300 rows pickle into the cache in ~1 ms as tuples of
# ints instead of ~7 ms as dicts of Decimals (and load ~9x faster on a warm read).
ProductRow = tuple[str, str, str, int, int]


def cents(value: Decimal | None) -> int:
    """Integer cents of a two-decimal amount."""
    return int(value * 100) if value else 0


def from_cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def product_rows(filters: DashboardFilters) -> list[ProductRow]:
    """The period's product rows. Once per read snapshot (top products and category revenue
    share it)."""
    key = f"product_rows:{filters.bucket}:{filters.start}:{filters.end}"
    return memo(f"{key}:{filters.device}:{filters.country}", lambda: _product_rows(filters))


def _product_sums(qs: QuerySet) -> list[ProductRow]:
    """Summed product rows as plain tuples: both sums are cast to bigint in SQL, so the rows
    need none of the ORM's per-value converters (~4,300 rows at 90 days)."""
    grouped = (
        qs.values_list("product_id", "category", "event_type")
        .annotate(
            events=Cast(Sum("events"), BigIntegerField()),
            cents=Cast(Round(Sum("revenue") * 100), BigIntegerField()),
        )
        .order_by()
    )
    sql, params = grouped.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _weeks_and_edge_days(
    daily: QuerySet, weekly: QuerySet, filters: DashboardFilters
) -> list[ProductRow] | None:
    """A day-bucketed period's whole weeks from `weekly` and only the days at either end from
    `daily` (None when the period holds no whole week)."""
    first, last = whole_weeks(filters.start, filters.end)
    if first >= last:
        return None
    days = daily.filter(
        Q(bucket__gte=filters.start, bucket__lt=first) | Q(bucket__gte=last, bucket__lt=filters.end)
    )
    return _product_sums(days) + _product_sums(weekly.filter(bucket__gte=first, bucket__lt=last))


def _rolled_product_rows(filters: DashboardFilters) -> list[ProductRow]:
    """The rollup part of product_rows. A device or country filter reads the product metrics;
    an unfiltered view the totals without them. A day-bucketed period reads its whole weeks
    from weekly rows (totals; per device or per country for a filter on one of them) and only
    the days at either end from the daily ones."""
    filtered = {"device_type": filters.device, "country": filters.country}
    one_dimension = {field: value for field, value in filtered.items() if value}
    if filters.bucket == "day" and len(one_dimension) == 1:
        [(field, value)] = one_dimension.items()
        rows = _weeks_and_edge_days(
            PRODUCT_METRIC["day"].objects.filter(**{field: value}),
            PRODUCT_WEEK_BY[field].objects.filter(**{field: value}),
            filters,
        )
        if rows is not None:
            return rows
    if one_dimension:
        return _product_sums(in_period(PRODUCT_METRIC[filters.bucket].objects.all(), filters))
    if filters.bucket == "day":
        rows = _weeks_and_edge_days(
            PRODUCT_TOTAL["day"].objects.all(),
            PRODUCT_TOTAL["week"].objects.all(),
            filters,
        )
        if rows is not None:
            return rows
    return _product_sums(in_period(PRODUCT_TOTAL[filters.bucket].objects.all(), filters))


def _product_rows(filters: DashboardFilters) -> list[ProductRow]:
    rows = rollup_cached("product_rows", filters, lambda: _rolled_product_rows(filters))
    summary = tail_summary()
    if summary is None:
        tail_rows = raw_events.product_rows(raw_events.events_in(filters, tail()))
        return list(rows) + [
            (
                row["product_id"],
                row["category"],
                row["event_type"],
                row["events"],
                cents(row["revenue"]),
            )
            for row in tail_rows
        ]
    cells: dict[tuple[str, str, str], list[int]] = {}
    period = Period(filters)
    for (hour, *key, device, country), (n, revenue) in summary.products.items():
        if not period.matches(hour, device, country):
            continue
        cell = cells.setdefault(tuple(key), [0, 0])
        cell[0] += n
        cell[1] += cents(revenue)
    return list(rows) + [(*key, n, revenue) for key, (n, revenue) in cells.items()]


def category_revenue(filters: DashboardFilters) -> dict[str, Decimal]:
    """Purchase revenue per category, summed from the product rows of the same read (product
    rollups hold every purchase, with or without a product line): no second rollup query."""
    totals: dict[str, int] = defaultdict(int)
    for _, category, event_type, _, revenue in product_rows(filters):
        if event_type == "purchase":
            totals[category] += revenue
    return {category: from_cents(revenue) for category, revenue in totals.items()}
