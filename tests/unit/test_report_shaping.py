"""Shaping for the pages without a database: chart specs, CSV tables and number formats."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from reports import charts, csv_export
from reports.templatetags import report_format


def test_bucket_labels_are_short_and_utc():
    """Axis labels read as UTC times whatever the offset of the value."""
    moment = dt.datetime(2026, 11, 26, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert charts.bucket_label(moment, "minute") == "14:30"
    assert charts.bucket_label(moment, "hour") == "26 Nov 14:30"
    assert charts.bucket_label("2026-11-26T00:00:00+00:00", "day") == "26 Nov"


def _steps(counts: list[int]) -> list[dict]:
    return [{"step": f"s{i}", "sessions": n} for i, n in enumerate(counts)]


def test_funnel_spec_has_one_dataset_per_split_up_to_a_limit():
    """Unsplit: one dataset; split: one per key, the largest few only."""
    assert len(charts.funnel(_steps([3, 2]), [])["datasets"]) == 1
    splits = [{"key": f"k{i}", "steps": _steps([i, 0])} for i in range(10)]
    spec = charts.funnel(_steps([3, 2]), splits)
    assert [d["label"] for d in spec["datasets"]] == [f"k{i}" for i in range(charts.TOP_SPLITS)]


def test_pass_rate_spec_draws_the_target_as_a_reference_line():
    """The target is a second dataset with role=target at the same value in every bucket."""
    series = [
        {"bucket": dt.datetime(2026, 11, 26, hour, tzinfo=dt.UTC), "pass_rate": rate}
        for hour, rate in ((1, 0.99), (2, None), (3, 1.0))
    ]
    spec = charts.pass_rate(series, 0.995, "hour")
    assert spec["format"] == "percent"
    assert spec["datasets"][0]["data"] == [0.99, None, 1.0]
    assert spec["datasets"][1] == {
        "label": "Target 99.5%",
        "data": [0.995, 0.995, 0.995],
        "role": "target",
    }


def test_csv_table_has_a_fixed_header_and_formats_cells():
    """Columns come from the table definition; datetimes are ISO UTC, None is empty."""
    data = {
        "newest": [
            {
                "event_type": "purchase",
                "timestamp": dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC),
                "user_id": "u1",
                "country": None,
                "device_type": "mobile",
                "ignored": "x",
            }
        ]
    }
    rows = list(csv.reader(io.StringIO(csv_export.table_csv("live", "newest", data))))
    assert rows == [
        ["timestamp", "event_type", "user_id", "country", "device_type"],
        ["2026-11-26T12:00:00+00:00", "purchase", "u1", "", "mobile"],
    ]
    assert csv_export.table_exists("funnel", "steps")
    assert not csv_export.table_exists("funnel", "nope")


def test_funnel_csv_lists_the_total_then_each_split():
    """The funnel download holds the unsplit steps first, then each split's."""
    step = {"step": "page_view", "sessions": 3}
    data = {"steps": [step], "splits": [{"key": "mobile", "steps": [{**step, "sessions": 1}]}]}
    rows = list(csv.DictReader(io.StringIO(csv_export.table_csv("funnel", "steps", data))))
    assert [(row["split"], row["sessions"]) for row in rows] == [("all", "3"), ("mobile", "1")]


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (1234567, "int", "1,234,567"),
        (0.04321, "ratio", "4.3%"),
        (None, "ratio", "–"),
        (55222.456, "money", "55,222.46"),
    ],
)
def test_metric_formats(value, kind, expected):
    """KPI values print as counts, percentages or amounts; a missing rate is a dash."""
    assert report_format.metric(value, kind) == expected


def test_change_and_duration_formats():
    """Changes are signed ("new" when there was nothing before); lags use a sensible unit."""
    assert report_format.change(12.345) == "+12.3%"
    assert report_format.change(-1) == "-1.0%"
    assert report_format.change(None) == "new"
    assert report_format.duration(42) == "42 s"
    assert report_format.duration(7 * 60) == "7 min"
    assert report_format.duration(3 * 3600) == "3 h"
    assert report_format.duration(None) == "–"


def test_country_options_mark_only_the_selected_country():
    """The cached option list selects exactly the filtered country, and none by default."""
    html = report_format.country_options("DE")
    assert html.count(" selected") == 1
    assert '<option value="DE" selected>Germany (DE)</option>' in html
    assert " selected" not in report_format.country_options(None)
