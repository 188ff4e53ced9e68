"""The counts dataset checks judge, read from the check rollups (ADR 0019) plus the raw tail.

A window [start, end) of event time splits into whole buckets, read from the rollups (hours:
`EventHour`, `NullHour`; minutes for volume: `EventMinute`) plus the raw tail after the intake
watermark in those buckets, and partial buckets at the edges, read raw (at most one bucket of
events each). A read costs what the window's buckets and the tail hold, not what the table
holds. Each read runs in one snapshot (`intake_snapshot`), so a fold committing meanwhile
cannot count a row twice or miss it. Property paths (`properties.<key>`), drift on fields
other than type, device, country and currency, and means of numbers other than the price are
not rolled up: they read their window raw.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from events.facade import EVENT_COLUMNS, events_all
from events.receive_order import ReceivePosition, after_q
from quality.engine.checks import NULLABLE_FIELDS, is_property_path
from quality.models import EventHour, EventMinute, NullHour
from quality.selectors.buckets import BUCKETS, bucket_start
from quality.selectors.evidence import TEXT_COLUMNS, field_expression
from quality.selectors.intake import Span, in_span, intake_marks, intake_snapshot
from quality.selectors.shapes import field_mean_raw

NULL_FIELDS = tuple(sorted(NULLABLE_FIELDS))
ROLLED_DRIFT_FIELDS = ("event_type", "device_type", "country", "currency")
ROLLED_MEAN_FIELDS = ("price",)
_COLUMN_TYPES = dict(EVENT_COLUMNS)


def null_sql(name: str, prefix: str = "") -> str:
    """SQL condition: the column is empty (NULL, or "" for text columns), as the raw reads."""
    column = f"{prefix}{name}"
    if _COLUMN_TYPES[name] == "text":
        return f"({column} IS NULL OR {column} = '')"
    return f"{column} IS NULL"


def window_split(start: dt.datetime, end: dt.datetime, grain: str) -> tuple[Span | None, list]:
    """([first, last) of whole `grain` buckets or None, [partial edge spans])."""
    first = bucket_start(start, grain)
    if first < start:
        first += BUCKETS[grain]
    last = bucket_start(end, grain)
    if first >= last:
        return None, [(start, end)] if start < end else []
    edges = [span for span in ((start, first), (last, end)) if span[0] < span[1]]
    return (first, last), edges


def _tail(span: Span) -> list[QuerySet]:
    """Raw events after the watermark with timestamp in `span` (one query each: the leading
    txid range of `after_q` walks the (txid, id) index over the tail only)."""
    return [in_span(events_all().filter(after_q(intake_marks().events)), span, "timestamp")]


def _dimension(name: str, hours: Span) -> QuerySet:
    """`EventHour` rows of one dimension in whole hours (each event counts once per dimension)."""
    return in_span(EventHour.objects.filter(dimension=name), hours, "bucket")


def _in_time(span: Span) -> QuerySet:
    return in_span(events_all(), span, "timestamp")


# --- volume ----------------------------------------------------------------------------------


def event_counts_in_windows(windows: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[int]:
    """Events (by event time) in each [start, end) window: whole minutes from `EventMinute`
    plus the tail, the sub-minute edges raw. Four queries, whatever the number of windows."""
    if not windows:
        return []
    splits = [window_split(start, end, "minute") for start, end in windows]
    whole = {i: span for i, (span, _) in enumerate(splits) if span is not None}
    edges = [(i, span) for i, (_, spans) in enumerate(splits) for span in spans]
    counts = [0] * len(windows)
    with intake_snapshot():
        results = []
        if whole:
            results.append(
                EventMinute.objects.aggregate(
                    **{
                        f"w{i}": Sum("events", filter=Q(bucket__gte=low, bucket__lt=high))
                        for i, (low, high) in whole.items()
                    }
                )
            )
            in_whole = {
                f"w{i}": Count("id", filter=Q(timestamp__gte=low, timestamp__lt=high))
                for i, (low, high) in whole.items()
            }
            span = (min(low for low, _ in whole.values()), max(high for _, high in whole.values()))
            results += [rows.aggregate(**in_whole) for rows in _tail(span)]
        if edges:
            span = (min(low for _, (low, _) in edges), max(high for _, (_, high) in edges))
            results.append(
                _in_time(span).aggregate(
                    **{
                        f"w{i}_{j}": Count("id", filter=Q(timestamp__gte=low, timestamp__lt=high))
                        for j, (i, (low, high)) in enumerate(edges)
                    }
                )
            )
        for result in results:
            for key, value in result.items():
                counts[int(key[1:].split("_")[0])] += value or 0
    return counts


# --- null rate -------------------------------------------------------------------------------


def _null_counts_raw(rows: QuerySet, field: str) -> tuple[int, int]:
    rows = rows.annotate(value=field_expression(field))
    empty = Q(value__isnull=True)
    if field in TEXT_COLUMNS or is_property_path(field):
        empty |= Q(value="")
    result = rows.aggregate(total=Count("id"), empty=Count("id", filter=empty))
    return result["empty"], result["total"]


def field_null_counts(
    field: str, event_types: Sequence[str], start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(null or empty, total) for a field (or `properties.<path>`, read raw) in the window."""

    def typed(rows: QuerySet) -> QuerySet:
        return rows.filter(event_type__in=event_types) if event_types else rows

    if is_property_path(field):
        return _null_counts_raw(typed(_in_time((start, end))), field)
    hours, edges = window_split(start, end, "hour")
    empty = total = 0
    with intake_snapshot():
        parts = [typed(_in_time(span)) for span in edges]
        if hours is not None:
            parts += [typed(rows) for rows in _tail(hours)]
            nulls = typed(in_span(NullHour.objects.filter(field=field), hours, "bucket"))
            empty += nulls.aggregate(n=Sum("nulls"))["n"] or 0
            rows = _dimension("event_type", hours)
            if event_types:
                rows = rows.filter(value__in=event_types)
            total += rows.aggregate(n=Sum("events"))["n"] or 0
        for rows in parts:
            part_empty, part_total = _null_counts_raw(rows, field)
            empty, total = empty + part_empty, total + part_total
    return empty, total


# --- duplicates ------------------------------------------------------------------------------

_KEY = ("session_id", "event_type", "product_id", "timestamp")


def _repeats_raw(rows: QuerySet) -> tuple[int, int]:
    """(rows with an earlier event of the same content key in fold order, rows)."""
    earlier = (
        events_all()
        .filter(**{key: OuterRef(key) for key in _KEY})
        .filter(Q(txid__lt=OuterRef("txid")) | Q(txid=OuterRef("txid"), id__lt=OuterRef("id")))
    )
    result = rows.aggregate(total=Count("id"), repeats=Count("id", filter=Q(Exists(earlier))))
    return result["repeats"], result["total"]


def duplicate_counts(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(events beyond the first per (session, type, product, timestamp), total) in the window.

    Different event_ids with the same content key are the same action sent twice by a client
    that did not reuse its event_id (event_id repeats are deduped at ingestion already). The key
    holds the timestamp, so all copies of a key are in the same hour (and window).
    """
    hours, edges = window_split(start, end, "hour")
    duplicates = total = 0
    with intake_snapshot():
        parts = [_in_time(span) for span in edges]
        if hours is not None:
            parts += _tail(hours)
            rolled = _dimension("event_type", hours).aggregate(d=Sum("duplicates"), n=Sum("events"))
            duplicates, total = rolled["d"] or 0, rolled["n"] or 0
        for rows in parts:
            repeats, count = _repeats_raw(rows)
            duplicates, total = duplicates + repeats, total + count
    return duplicates, total


# --- drift -----------------------------------------------------------------------------------


def _category_counts_raw(rows: QuerySet, field: str) -> Counter:
    rows = rows.annotate(value=field_expression(field))
    return Counter(
        {str(value): n for value, n in rows.values_list("value").annotate(n=Count("id")).order_by()}
    )


def category_counts(field: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Events per value of a field (or `properties.<path>`, missing counted as "None")."""
    if field not in ROLLED_DRIFT_FIELDS:
        return dict(_category_counts_raw(_in_time((start, end)), field))
    hours, edges = window_split(start, end, "hour")
    counts: Counter = Counter()
    with intake_snapshot():
        parts = [_in_time(span) for span in edges]
        if hours is not None:
            parts += _tail(hours)
            rolled = _dimension(field, hours).values_list("value")
            counts.update(
                {str(value): n for value, n in rolled.annotate(n=Sum("events")).order_by()}
            )
        for rows in parts:
            counts.update(_category_counts_raw(rows, field))
    return {value: n for value, n in counts.items() if n}


# --- mean -----------------------------------------------------------------------------------


def field_mean(field: str, start: dt.datetime, end: dt.datetime) -> tuple[float | None, int]:
    """(mean, count) of a numeric column's non-null values in the window (event time): the
    price from `EventHour` sums plus the tail and the edges, other columns raw."""
    if field not in ROLLED_MEAN_FIELDS:
        return field_mean_raw(field, start, end)
    hours, edges = window_split(start, end, "hour")
    total, count = Decimal(0), 0
    with intake_snapshot():
        parts = [_in_time(span) for span in edges]
        if hours is not None:
            parts += _tail(hours)
            rolled = _dimension("event_type", hours).aggregate(s=Sum("price_sum"), n=Sum("prices"))
            total, count = rolled["s"] or Decimal(0), rolled["n"] or 0
        for rows in parts:
            result = rows.filter(**{f"{field}__isnull": False}).aggregate(
                s=Sum(field), n=Count("id")
            )
            total, count = total + (result["s"] or 0), count + result["n"]
    return (float(total / count) if count else None), count


# --- funnel ----------------------------------------------------------------------------------


def _orphans_raw(rows: QuerySet) -> tuple[int, int]:
    checkout = events_all().filter(session_id=OuterRef("session_id"), event_type="checkout_start")
    purchases = rows.filter(event_type="purchase").annotate(has_checkout=Exists(checkout))
    result = purchases.aggregate(
        total=Count("id"), orphans=Count("id", filter=Q(has_checkout=False))
    )
    return result["orphans"], result["total"]


def _orphans_taken_back(position: ReceivePosition, hours: Span) -> int:
    """Rolled-up orphan purchases in `hours` whose session has a checkout_start only in the
    tail. Driven by the tail's checkouts (few), so it costs what the tail holds."""
    sessions = list(
        events_all()
        .filter(after_q(position), event_type="checkout_start")
        .values_list("session_id", flat=True)
        .distinct()
    )
    if not sessions:
        return 0
    folded_checkout = (
        events_all()
        .filter(session_id=OuterRef("session_id"), event_type="checkout_start")
        .exclude(after_q(position))
    )
    return (
        _in_time(hours)
        .filter(event_type="purchase", session_id__in=sessions)
        .exclude(after_q(position))
        .exclude(Exists(folded_checkout))
        .count()
    )


def purchases_without_checkout(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(purchases whose session has no checkout_start, purchases) in the window.

    Rolled-up hours count purchases with no folded checkout_start; the ones whose session got
    its first checkout_start in the tail are taken back here, and tail purchases are judged raw.
    """
    hours, edges = window_split(start, end, "hour")
    orphans = total = 0
    with intake_snapshot():
        parts = [_in_time(span) for span in edges]
        if hours is not None:
            position = intake_marks().events
            parts += _tail(hours)
            rolled = _dimension("event_type", hours).filter(value="purchase")
            result = rolled.aggregate(o=Sum("orphans"), n=Sum("events"))
            orphans, total = result["o"] or 0, result["n"] or 0
            if not position.is_start:
                orphans -= _orphans_taken_back(position, hours)
        for rows in parts:
            part_orphans, part_total = _orphans_raw(rows)
            orphans, total = orphans + part_orphans, total + part_total
    return orphans, total
