"""CSV downloads of dashboard tables: which columns each table has, read from the same selector
output the page shows (so a download matches the screen, filters included)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable
from typing import Any

Rows = Callable[[dict[str, Any]], Iterable[dict[str, Any]]]


def _kpi_rows(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for name, kpi in data["kpis"].items():
        yield {"kpi": name, **kpi}


def _series_rows(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    series = data["series"]
    for label, events, revenue in zip(
        series["labels"], series["events"], series["revenue"], strict=True
    ):
        yield {"bucket_start": label, "events": events, "revenue": revenue}


def _funnel_rows(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for step in data["steps"]:
        yield {"split": "all", **step}
    for split in data["splits"]:
        for step in split["steps"]:
            yield {"split": split["key"], **step}


def _quarantine_rows(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for rule, count in (data["quarantine"] or {}).get("by_rule", {}).items():
        yield {"rule": rule, "quarantined": count}


def _custom_event_rows(data: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for row in data["custom_events"]:
        yield {**row, "trend": " ".join(str(count) for count in row["trend"])}


def _key(name: str) -> Rows:
    return lambda data: data[name]


# page -> table -> (columns, rows). Column order is the file's header.
TABLES: dict[str, dict[str, tuple[list[str], Rows]]] = {
    "overview": {
        "kpis": (["kpi", "value", "previous", "change_pct"], _kpi_rows),
        "series": (["bucket_start", "events", "revenue"], _series_rows),
        "event_mix": (["event_type", "count"], _key("event_mix")),
        # trend: events per bucket of the period, oldest first, space-separated
        "custom_events": (["event_type", "events", "users", "trend"], _custom_event_rows),
    },
    "funnel": {
        "steps": (
            ["split", "step", "sessions", "step_conversion", "overall_conversion", "drop_off"],
            _funnel_rows,
        ),
    },
    "products": {
        "top_viewed": (["product_id", "category", "count"], _key("top_viewed")),
        "top_added": (["product_id", "category", "count"], _key("top_added")),
        "top_purchased": (["product_id", "category", "count", "revenue"], _key("top_purchased")),
        "revenue_by_category": (["category", "revenue"], _key("revenue_by_category")),
    },
    "audience": {
        "devices": (["device_type", "events", "users"], _key("devices")),
        "countries": (["country", "events", "users"], _key("countries")),
    },
    "live": {
        "per_minute": (["minute", "count"], _key("per_minute")),
        "newest": (
            ["timestamp", "event_type", "user_id", "country", "device_type"],
            _key("newest"),
        ),
    },
    "quality": {
        "pass_rate": (
            ["bucket", "accepted", "rejected", "warned", "pass_rate"],
            _key("pass_rate_series"),
        ),
        "failing_rules": (
            ["rule_id", "name", "severity", "rejected", "warned", "evaluated", "failure_rate"],
            _key("top_failing_rules"),
        ),
        "quarantine": (["rule", "quarantined"], _quarantine_rows),
        "incidents": (
            ["id", "title", "severity", "status", "opened_at", "last_seen_at", "occurrences"],
            _key("incidents"),
        ),
        "check_runs": (
            ["check", "kind", "outcome", "metric_value", "threshold", "ran_at", "duration_ms"],
            _key("check_runs"),
        ),
    },
}


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if value is None:
        return ""
    return value


def table_exists(page: str, table: str) -> bool:
    return table in TABLES.get(page, {})


def table_csv(page: str, table: str, data: dict[str, Any]) -> str:
    """The table as CSV text (header first); unknown columns in the rows are left out."""
    columns, rows = TABLES[page][table]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows(data):
        writer.writerow({column: _cell(row.get(column)) for column in columns})
    return buffer.getvalue()
