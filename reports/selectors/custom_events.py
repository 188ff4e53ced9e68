"""The custom-events table of the overview: per event name outside the seven e-commerce types,
its events, distinct users (people, ADR 0015) and trend per bucket of the period.

Events and trend come from the overview's own bucket rows (rollups plus raw tail, ADR 0003), so
they cost nothing more. Users per name have no rollup (the user bitmaps are per bucket, device
and country, not per name): they are counted over the period's events of those names only,
found through the (event_type, timestamp) index, in the overview's snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db.models import Count

from events.facade import events_all, events_with_person
from events.schema import EVENT_TYPES
from reports.filters import DashboardFilters

# The sparkline's levels, lowest first: a trend readable without JavaScript and in CSV.
_LEVELS = "▁▂▃▄▅▆▇█"


def is_custom(event_type: str) -> bool:
    return event_type not in EVENT_TYPES


def _users_by_name(filters: DashboardFilters, names: list[str]) -> dict[str, int]:
    qs = events_all().filter(
        event_type__in=names, timestamp__gte=filters.start, timestamp__lt=filters.end
    )
    if filters.device:
        qs = qs.filter(device_type=filters.device)
    if filters.country:
        qs = qs.filter(country=filters.country)
    rows = (
        events_with_person(qs).values("event_type").annotate(users=Count("person", distinct=True))
    )
    return {row["event_type"]: row["users"] for row in rows.order_by()}


def sparkline(counts: list[int]) -> str:
    top = max(counts, default=0)
    if not top:
        return _LEVELS[0] * len(counts)
    return "".join(_LEVELS[round(count / top * (len(_LEVELS) - 1))] for count in counts)


def custom_events(
    filters: DashboardFilters, bucket_rows: list[dict[str, Any]], starts: list[dt.datetime]
) -> list[dict[str, Any]]:
    """Rows {event_type, events, users, trend: [events per bucket], sparkline}, most events
    first. `bucket_rows` are the period's rows per bucket and type; `starts` its buckets."""
    trends: dict[str, dict[dt.datetime, int]] = defaultdict(lambda: defaultdict(int))
    for row in bucket_rows:
        if is_custom(row["event_type"]) and row["events"]:
            trends[row["event_type"]][row["bucket"]] += row["events"]
    if not trends:
        return []
    users = _users_by_name(filters, sorted(trends))
    rows = []
    for name, per_bucket in trends.items():
        trend = [per_bucket.get(start, 0) for start in starts]
        rows.append(
            {
                "event_type": name,
                "events": sum(per_bucket.values()),
                "users": users.get(name, 0),
                "trend": trend,
                "sparkline": sparkline(trend),
            }
        )
    return sorted(rows, key=lambda row: (-row["events"], row["event_type"]))
