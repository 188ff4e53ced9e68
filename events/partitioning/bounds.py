"""Interval math of the events partitions: pure, unit-tested without a database.

A partition covers [start, end) of received_at (UTC). Partitions we create start on a UTC day;
an interval partition ends on the next interval boundary (day or month), so the first one after
a converted table's bound may be shorter. `None` stands for MINVALUE/MAXVALUE.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

INTERVALS = ("day", "month")
TABLE = "events_event"
DEFAULT_PARTITION = f"{TABLE}_default"
LEGACY_PARTITION = f"{TABLE}_legacy"

Range = tuple[dt.datetime | None, dt.datetime | None]


def interval_floor(moment: dt.datetime, interval: str) -> dt.datetime:
    """The start of the interval holding `moment`, in UTC."""
    day = moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        return day
    if interval == "month":
        return day.replace(day=1)
    raise ValueError(f"partition interval is one of {', '.join(INTERVALS)}, not {interval!r}")


def interval_next(moment: dt.datetime, interval: str) -> dt.datetime:
    """The first interval boundary strictly after `moment`."""
    start = interval_floor(moment, interval)
    if interval == "day":
        return start + dt.timedelta(days=1)
    return (start + dt.timedelta(days=32)).replace(day=1)


def day_next(moment: dt.datetime) -> dt.datetime:
    """The first UTC midnight strictly after `moment` (a converted table's upper bound)."""
    return interval_next(moment, "day")


def partition_name(start: dt.datetime) -> str:
    return f"{TABLE}_p{start.astimezone(dt.UTC):%Y%m%d}"


def _covered(point: dt.datetime, ranges: Iterable[Range]) -> dt.datetime | None:
    """The end of the range holding `point` (a far future for MAXVALUE), or None."""
    for start, end in ranges:
        if (start is None or start <= point) and (end is None or point < end):
            return end or dt.datetime.max.replace(tzinfo=dt.UTC)
    return None


def _next_start(point: dt.datetime, ranges: Iterable[Range]) -> dt.datetime | None:
    starts = [start for start, _ in ranges if start is not None and start > point]
    return min(starts, default=None)


def missing_ranges(
    since: dt.datetime, until: dt.datetime, existing: Sequence[Range], interval: str
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The partitions to create so that [interval_floor(since), until) is covered: aligned on
    interval boundaries, clipped around the partitions that exist (never overlapping them)."""
    created: list[tuple[dt.datetime, dt.datetime]] = []
    point = interval_floor(since, interval)
    while point < until:
        end_of_existing = _covered(point, existing)
        if end_of_existing is not None:
            point = end_of_existing
            continue
        end = interval_next(point, interval)
        following = _next_start(point, existing)
        if following is not None and following < end:
            end = following
        created.append((point, end))
        point = end
    return created
