"""Reads for the shape checks that detect incidents the rate checks cannot see (ADR 0020): a
late batch (events received long after their timestamp), one value flooding the traffic (a
bot), and a numeric field changing scale (prices in cents). Raw reads over one window."""

from __future__ import annotations

import datetime as dt

from django.db.models import Avg, Count, ExpressionWrapper, F, Q
from django.db.models import DateTimeField as DateTimeOut

from events.facade import events_all


def late_counts(start: dt.datetime, end: dt.datetime, lag: dt.timedelta) -> tuple[int, int]:
    """(events received in [start, end) more than `lag` after their timestamp, all received)."""
    rows = events_all().filter(received_at__gte=start, received_at__lt=end)
    late_after = ExpressionWrapper(F("timestamp") + lag, output_field=DateTimeOut())
    result = rows.aggregate(
        total=Count("id"), late=Count("id", filter=Q(received_at__gt=late_after))
    )
    return result["late"], result["total"]


def top_value_count(field: str, start: dt.datetime, end: dt.datetime) -> tuple[int, int, str]:
    """(events with the most frequent non-empty value of `field`, all events, that value) in
    the window (by event time)."""
    rows = events_all().filter(timestamp__gte=start, timestamp__lt=end)
    total = rows.count()
    top = (
        rows.exclude(**{f"{field}__isnull": True})
        .exclude(**{field: ""})
        .values_list(field)
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    if top is None:
        return 0, total, ""
    return top[1], total, str(top[0])


def field_mean_raw(field: str, start: dt.datetime, end: dt.datetime) -> tuple[float | None, int]:
    """(mean, count) of a numeric column over non-null values in the window (event time), raw
    (`check_counts.field_mean` reads the price from the rollups)."""
    rows = events_all().filter(
        timestamp__gte=start, timestamp__lt=end, **{f"{field}__isnull": False}
    )
    result = rows.aggregate(mean=Avg(field), n=Count("id"))
    mean = result["mean"]
    return (float(mean) if mean is not None else None), result["n"]
