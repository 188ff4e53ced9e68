"""Dashboard filter parsing: presets aligned to buckets, custom ranges, safe fallbacks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.http import QueryDict

from reports.filters import DashboardFilters, filters_from_query, filters_ignored

NOW = dt.datetime(2026, 3, 10, 14, 37, 12, tzinfo=dt.UTC)


def parse(query: str) -> DashboardFilters:
    return filters_from_query(QueryDict(query), now=NOW)


def test_default_is_seven_whole_utc_days_ending_with_today():
    """No query means the 7d preset: today and the six days before, in UTC day buckets."""
    f = parse("")
    assert (f.preset, f.bucket) == ("7d", "day")
    assert f.start == dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
    assert f.end == dt.datetime(2026, 3, 11, tzinfo=dt.UTC)
    assert (f.device, f.country) == (None, None)


def test_24h_preset_is_hour_aligned_and_includes_the_current_hour():
    """24h covers the 24 hourly buckets up to and including the one holding `now`."""
    f = parse("preset=24h")
    assert f.bucket == "hour"
    assert f.end == dt.datetime(2026, 3, 10, 15, tzinfo=dt.UTC)
    assert f.end - f.start == dt.timedelta(hours=24)
    assert f.start <= NOW < f.end


@pytest.mark.parametrize("preset,days", [("30d", 30), ("90d", 90)])
def test_long_presets_are_whole_days(preset, days):
    f = parse(f"preset={preset}")
    assert f.end - f.start == dt.timedelta(days=days)
    assert f.start.hour == 0 and f.bucket == "day"


def test_custom_range_is_inclusive_of_both_dates():
    """start/end are calendar dates; the end date is included (period ends at next midnight)."""
    f = parse("start=2026-02-01&end=2026-02-03&device=mobile&country=de")
    assert f.preset == "custom"
    assert f.start == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    assert f.end == dt.datetime(2026, 2, 4, tzinfo=dt.UTC)
    assert (f.device, f.country) == ("mobile", "DE")


def test_a_single_custom_day_is_charted_by_hour():
    assert parse("start=2026-02-01&end=2026-02-01").bucket == "hour"


@pytest.mark.parametrize(
    "query",
    [
        "preset=5y",
        "start=2026-02-05&end=2026-02-01",  # reversed
        "start=yesterday&end=2026-02-01",
        "start=2020-01-01&end=2026-02-01",  # longer than a year
        "start=2026-02-01",  # end missing
    ],
)
def test_invalid_periods_fall_back_to_the_default(query):
    """A mistyped shared link still shows a dashboard, with the default period."""
    assert parse(query) == parse("")


@pytest.mark.parametrize("query", ["device=phone", "country=XX", "country=usa", "device="])
def test_invalid_device_or_country_is_ignored(query):
    f = parse(query)
    assert (f.device, f.country) == (None, None)


@pytest.mark.parametrize(
    ("query", "ignored"),
    [
        ("device=phone", ["Ignored unknown device 'phone'"]),
        ("country=XX", ["Ignored unknown country 'XX'"]),
        ("country=usa", ["Ignored unknown country 'usa'"]),
        ("preset=5y", ["Ignored unknown preset '5y'"]),
        ("device=&country=&preset=", []),
        ("device=mobile&country=de&preset=24h", []),
        ("preset=custom&start=2026-02-05&end=2026-02-01", []),  # a refused range says why
    ],
)
def test_ignored_values_are_named(query, ignored):
    """Every unknown device, country or preset that parsing drops is named for the page."""
    assert filters_ignored(QueryDict(query)) == ignored


@pytest.mark.parametrize(
    "query",
    ["preset=24h&device=tablet", "preset=30d&country=BR", "start=2026-01-01&end=2026-01-31"],
)
def test_as_query_reproduces_the_filters(query):
    """Links built from the filters open the same view."""
    f = parse(query)
    assert parse(f.as_query()) == f


def test_previous_period_has_equal_length_and_ends_where_this_starts():
    f = parse("preset=30d&device=mobile")
    previous = f.previous()
    assert previous.end == f.start
    assert previous.end - previous.start == f.end - f.start
    assert (previous.device, previous.bucket) == ("mobile", f.bucket)
