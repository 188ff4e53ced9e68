"""Chart specs: selector output shaped into the small JSON that `static/reports/js/charts.js`
turns into Chart.js charts.

Why a spec and not a Chart.js config: the template hands it over with `json_script` (no code
in data), and the one script owns colours, axes and number formats, so every chart looks the
same. A spec is `{"type", "labels", "datasets": [{"label", "data", "axis"?, "role"?}],
"format"?, "horizontal"?}`; `role: "target"` draws a dashed reference line.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from events.schema import UNKNOWN_COUNTRY

TOP_SPLITS = 6
TOP_COUNTRIES = 12
UNKNOWN_COUNTRY_LABEL = "Unknown"


def bucket_label(value: str | dt.datetime, bucket: str) -> str:
    """A short axis label for a bucket start: `26 Nov 14:00` for hours, `26 Nov` for days."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.astimezone(dt.UTC)
    if bucket == "minute":
        return moment.strftime("%H:%M")
    if bucket == "hour":
        return moment.strftime("%d %b %H:%M")
    return moment.strftime("%d %b")


def overview_events(series: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "line",
        "labels": [bucket_label(label, series["bucket"]) for label in series["labels"]],
        "datasets": [{"label": "Events", "data": series["events"]}],
    }


def overview_revenue(series: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "bar",
        "format": "money",
        "labels": [bucket_label(label, series["bucket"]) for label in series["labels"]],
        "datasets": [{"label": "Revenue", "data": series["revenue"]}],
    }


def event_mix(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "doughnut",
        "labels": [row["event_type"] for row in rows],
        "datasets": [{"label": "Events", "data": [row["count"] for row in rows]}],
    }


def funnel(steps: list[dict[str, Any]], splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Sessions per step; one dataset per split value (the largest few) when split."""
    labels = [step["step"] for step in steps]
    if not splits:
        datasets = [{"label": "Sessions", "data": [step["sessions"] for step in steps]}]
    else:
        datasets = [
            {"label": split["key"], "data": [step["sessions"] for step in split["steps"]]}
            for split in splits[:TOP_SPLITS]
        ]
    return {"type": "bar", "labels": labels, "datasets": datasets}


def top_products(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    return {
        "type": "bar",
        "horizontal": True,
        "labels": [row["product_id"] for row in rows],
        "datasets": [{"label": label, "data": [row["count"] for row in rows]}],
    }


def category_revenue(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "bar",
        "format": "money",
        "horizontal": True,
        "labels": [row["category"] or "(none)" for row in rows],
        "datasets": [{"label": "Revenue", "data": [row["revenue"] for row in rows]}],
    }


def dimension(rows: list[dict[str, Any]], field: str, kind: str = "doughnut") -> dict[str, Any]:
    rows = rows[:TOP_COUNTRIES]
    return {
        "type": kind,
        "horizontal": kind == "bar",
        "labels": [
            UNKNOWN_COUNTRY_LABEL
            if field == "country" and row[field] == UNKNOWN_COUNTRY
            else row[field]
            for row in rows
        ],
        "datasets": [{"label": "Events", "data": [row["events"] for row in rows]}],
    }


def new_vs_returning(counts: dict[str, int]) -> dict[str, Any]:
    return {
        "type": "doughnut",
        "labels": ["New", "Returning"],
        "datasets": [{"label": "Users", "data": [counts["new"], counts["returning"]]}],
    }


def live_per_minute(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "bar",
        "animate": False,
        "labels": [bucket_label(row["minute"], "minute") for row in rows],
        "datasets": [{"label": "Events per minute", "data": [row["count"] for row in rows]}],
    }


def pass_rate(series: list[dict[str, Any]], target: float, bucket: str) -> dict[str, Any]:
    """Pass rate per bucket (gaps where nothing arrived) against the target line."""
    return {
        "type": "line",
        "format": "percent",
        "labels": [bucket_label(row["bucket"], bucket) for row in series],
        "datasets": [
            {"label": "Pass rate", "data": [row["pass_rate"] for row in series]},
            {"label": f"Target {target:.1%}", "data": [target] * len(series), "role": "target"},
        ],
    }


def quarantine_by_rule(by_rule: dict[str, int]) -> dict[str, Any]:
    items = list(by_rule.items())[:TOP_COUNTRIES]
    return {
        "type": "bar",
        "horizontal": True,
        "labels": [name for name, _ in items],
        "datasets": [{"label": "Quarantined events", "data": [count for _, count in items]}],
    }


RATE_CHECK_KINDS = frozenset(
    {"null_rate", "duplicate_rate", "funnel_sanity", "validation_pass_rate"}
)


def check_metric(series: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """One check's metric per run against its threshold (a gap where a run had no value:
    skipped or errored). Rates are shown as percentages, other metrics as plain decimals."""
    return {
        "type": "line",
        "format": "percent" if kind in RATE_CHECK_KINDS else "decimal",
        "labels": [row["ran_at"].astimezone(dt.UTC).strftime("%d %b %H:%M") for row in series],
        "datasets": [
            {"label": "Metric", "data": [row["metric_value"] for row in series]},
            {"label": "Threshold", "data": [row["threshold"] for row in series], "role": "target"},
        ],
    }
