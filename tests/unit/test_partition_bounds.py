"""The partitions to create: aligned on the interval, never overlapping what exists, and the
first one after a converted table's bound (a midnight inside a month) is shorter."""

from __future__ import annotations

import datetime as dt

import pytest

from events.partitioning.bounds import interval_next, missing_ranges, partition_name


def t(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


def test_months_are_created_from_the_floor_of_since():
    assert missing_ranges(t(2026, 12, 6, 5), t(2027, 2, 1), [], "month") == [
        (t(2026, 12, 1), t(2027, 1, 1)),
        (t(2027, 1, 1), t(2027, 2, 1)),
    ]


def test_existing_ranges_are_skipped_and_a_partial_month_follows_a_legacy_bound():
    legacy = (None, t(2026, 12, 7))
    january = (t(2027, 1, 1), t(2027, 2, 1))
    assert missing_ranges(t(2026, 11, 1), t(2027, 3, 1), [legacy, january], "month") == [
        (t(2026, 12, 7), t(2027, 1, 1)),
        (t(2027, 2, 1), t(2027, 3, 1)),
    ]


def test_a_gap_before_an_existing_partition_is_clipped_to_it():
    later = (t(2026, 12, 10), t(2027, 1, 1))
    assert missing_ranges(t(2026, 12, 1), t(2026, 12, 31), [later], "month") == [
        (t(2026, 12, 1), t(2026, 12, 10))
    ]


def test_days_and_names():
    assert missing_ranges(t(2026, 12, 31, 23), t(2027, 1, 2), [], "day") == [
        (t(2026, 12, 31), t(2027, 1, 1)),
        (t(2027, 1, 1), t(2027, 1, 2)),
    ]
    assert interval_next(t(2026, 12, 31, 12), "month") == t(2027, 1, 1)
    assert partition_name(t(2027, 1, 1)) == "events_event_p20270101"


def test_an_unknown_interval_is_refused():
    with pytest.raises(ValueError, match="day, month"):
        missing_ranges(t(2026, 1, 1), t(2026, 2, 1), [], "week")
