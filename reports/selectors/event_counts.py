"""Stored events counted by type, device and country for /events/stats: the daily event
rollups summed, plus the raw tail after the watermark, in one snapshot (ADR 0011). Registered
with events in ReportsConfig.ready(), as events may not import reports (ADR 0006)."""

from __future__ import annotations

from collections import Counter

from django.db.models import Count, Sum

from events.selectors import EVENT_COUNT_FIELDS, EventCounts, by_count
from reports.models import EventMetricDaily
from reports.selectors.tail import read_snapshot, tail


def event_counts() -> EventCounts:
    """The same numbers as GROUP BYs over every stored event, from ~days x types x devices x
    countries rollup rows and the tail (which reads from the (txid, id) index)."""
    counts: dict[str, Counter[str]] = {field: Counter() for field in EVENT_COUNT_FIELDS}
    with read_snapshot():
        rolled = (
            EventMetricDaily.objects.values_list(*EVENT_COUNT_FIELDS)
            .annotate(n=Sum("events"))
            .order_by()
        )
        raw = tail().values_list(*EVENT_COUNT_FIELDS).annotate(n=Count("id")).order_by()
        for rows in (rolled, raw):
            for *keys, n in rows:
                for field, key in zip(EVENT_COUNT_FIELDS, keys, strict=True):
                    counts[field][key] += n
    return {field: by_count(dict(counter)) for field, counter in counts.items()}
