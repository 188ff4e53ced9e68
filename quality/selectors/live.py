"""The Live page's read: stored events per minute of event time, from the intake folds'
`EventMinute` rows plus the raw tail after their watermark."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Count
from django.db.models.functions import Trunc

from quality.models import EventMinute
from quality.selectors.buckets import bucket_start
from quality.selectors.intake import intake_marks, intake_snapshot


def events_per_minute(start: dt.datetime, end: dt.datetime) -> dict[dt.datetime, dict[str, int]]:
    """Stored events and those with warnings per minute of event time in [start, end), whole
    minutes (UTC). Minutes without events are left out. From `EventMinute` plus the raw tail."""
    start, end = bucket_start(start, "minute"), bucket_start(end, "minute")
    counts: dict[dt.datetime, dict[str, int]] = defaultdict(lambda: {"events": 0, "warned": 0})
    with intake_snapshot():
        marks = intake_marks()
        for minute, events, warned in EventMinute.objects.filter(
            bucket__gte=start, bucket__lt=end
        ).values_list("bucket", "events", "warned"):
            counts[minute.astimezone(dt.UTC)]["events"] += events
            counts[minute.astimezone(dt.UTC)]["warned"] += warned
        for events in marks.events_after():
            events = events.filter(timestamp__gte=start, timestamp__lt=end)
            for name, rows in (("events", events), ("warned", events.exclude(warnings=[]))):
                found = (
                    rows.annotate(b=Trunc("timestamp", "minute", tzinfo=dt.UTC))
                    .values("b")
                    .annotate(n=Count("timestamp"))
                    .order_by()
                )
                for row in found:
                    counts[row["b"].astimezone(dt.UTC)][name] += row["n"]
    return {minute: entry for minute, entry in counts.items() if entry["events"]}
