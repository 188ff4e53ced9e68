"""Time buckets of the quality reads: UTC minutes, hours and days, and zero-filled steps."""

from __future__ import annotations

import datetime as dt

BUCKETS = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1), "day": None}
_MAX_FILLED_BUCKETS = 5000


def bucket_start(value: dt.datetime, bucket: str) -> dt.datetime:
    """The start of the UTC minute, hour or day that holds `value`."""
    value = value.astimezone(dt.UTC)
    if bucket == "minute":
        return value.replace(second=0, microsecond=0)
    if bucket == "hour":
        return value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_steps(start: dt.datetime, end: dt.datetime, bucket: str) -> list[dt.datetime]:
    """Bucket starts from start's bucket up to end (at most 5,000, so a chart stays bounded)."""
    step = BUCKETS[bucket] or dt.timedelta(days=1)
    current, buckets = bucket_start(start, bucket), []
    while current < end and len(buckets) < _MAX_FILLED_BUCKETS:
        buckets.append(current)
        current += step
    return buckets
