"""The Great Expectations side of `benchmarks/quality_vs_gx.py`: runs in its own virtualenv
(great-expectations from requirements/bench.txt), never imports the project.

Reads one JSON object on stdin: {"url": SQLAlchemy URL, "now": ISO, "checks": [{"name", "kind",
"params", "threshold"}]}, and prints one JSON object: per check, the seconds GX took, its own
verdict where one expectation decides (`success`), and what it observed (counts) where the
project's decision function judges them (volume z-score, drift distance).

The windows are those of `quality.services.checks` for the same parameters, as SQL over the raw
tables: GX has no rollups, so this is what a GX suite over the same windows costs.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

import great_expectations as gx
import great_expectations.expectations as gxe

EVENTS = "events_event"
TEXT = {
    "event_type", "user_id", "session_id", "device_type", "country", "page_url", "referrer",
    "product_id", "category", "currency", "order_id", "search_query",
}  # fmt: skip


def _ts(value: dt.datetime) -> str:
    return value.isoformat()


class Suite:
    def __init__(self, url: str) -> None:
        self.context = gx.get_context(mode="ephemeral")
        self.source = self.context.data_sources.add_postgres(name="db", connection_string=url)
        self.count = 0

    def validate(self, query: str, expectation, result_format: str = "SUMMARY") -> dict:
        """One query asset (a batch) and one expectation on it."""
        self.count += 1
        asset = self.source.add_query_asset(name=f"q{self.count}", query=query)
        batch = asset.add_batch_definition_whole_table(f"b{self.count}").get_batch()
        result = batch.validate(expectation, result_format=result_format)
        return {"success": bool(result.success), "result": result.result}


def _window_sql(start: dt.datetime, end: dt.datetime, types=(), column: str = "timestamp") -> str:
    where = f"{column} >= '{_ts(start)}' AND {column} < '{_ts(end)}'"
    if types:
        where += " AND event_type IN (" + ", ".join(f"'{t}'" for t in types) + ")"
    return where


def _field_sql(field: str) -> str:
    if field.startswith("properties."):
        path = ",".join(field.split(".")[1:])
        return f"NULLIF(properties #>> '{{{path}}}', '')"
    return f"NULLIF({field}, '')" if field in TEXT else field


def _window(now: dt.datetime, params: dict, default: int = 60) -> tuple[dt.datetime, dt.datetime]:
    return now - dt.timedelta(minutes=params.get("window_minutes", default)), now


def freshness(suite: Suite, now: dt.datetime, check: dict) -> dict:
    types = check["params"].get("event_types") or ()
    where = _window_sql(dt.datetime(1, 1, 1, tzinfo=dt.UTC), now + dt.timedelta(days=3650), types)
    newest = now - dt.timedelta(minutes=check["threshold"])
    return suite.validate(
        f"SELECT timestamp FROM {EVENTS} WHERE {where}",
        gxe.ExpectColumnMaxToBeBetween(column="timestamp", min_value=newest),
    )


def _row_count(suite: Suite, query: str) -> int:
    found = suite.validate(query, gxe.ExpectTableRowCountToBeBetween(min_value=0))
    return int(found["result"]["observed_value"])


def _day_windows(now: dt.datetime, oldest: dt.datetime | None, params: dict) -> tuple:
    """As `quality.services.checks._volume`: the window on each earlier day with data, and
    the whole UTC days of the baseline period (for the weekday levels)."""
    window = dt.timedelta(minutes=params.get("window_minutes", 60))
    days = params.get("baseline_days", 7)
    windows, baseline_days = [(now - window, now)], []
    for day in range(1, days + 1):
        end = now - dt.timedelta(days=day)
        if oldest is not None and end - window >= oldest:
            windows.append((end - window, end))
            baseline_days.append(day)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    whole = [midnight - dt.timedelta(days=day) for day in range(1, days + 1)]
    whole = [start for start in whole if oldest is not None and start >= oldest]
    return windows, baseline_days, whole


def volume(suite: Suite, now: dt.datetime, check: dict) -> dict:
    """GX counts each window (and each whole day); the robust seasonal z-score is ours."""
    oldest = suite.validate(
        f"SELECT timestamp FROM {EVENTS}", gxe.ExpectColumnMinToBeBetween(column="timestamp")
    )["result"]["observed_value"]
    oldest = dt.datetime.fromisoformat(str(oldest)) if oldest is not None else None
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    windows, baseline_days, whole = _day_windows(now, oldest, check["params"])
    spans = windows + [(start, start + dt.timedelta(days=1)) for start in whole]
    counts = [
        _row_count(suite, f"SELECT id FROM {EVENTS} WHERE {_window_sql(start, end)}")
        for start, end in spans
    ]
    return {
        "counts": counts[: len(windows)],
        "days": baseline_days,
        "whole_days": [
            [start.weekday(), total]
            for start, total in zip(whole, counts[len(windows) :], strict=True)
        ],
    }


def null_rate(suite: Suite, now: dt.datetime, check: dict) -> dict:
    params = check["params"]
    where = _window_sql(*_window(now, params), params.get("event_types") or ())
    return suite.validate(
        f"SELECT {_field_sql(params['field'])} AS v FROM {EVENTS} WHERE {where}",
        gxe.ExpectColumnValuesToNotBeNull(column="v", mostly=1 - check["threshold"]),
    )


def duplicate_rate(suite: Suite, now: dt.datetime, check: dict) -> dict:
    where = _window_sql(*_window(now, check["params"]))
    return suite.validate(
        "SELECT ROW_NUMBER() OVER (PARTITION BY session_id, event_type, product_id, timestamp "
        f"ORDER BY id) AS copy FROM {EVENTS} WHERE {where}",
        gxe.ExpectColumnValuesToBeInSet(
            column="copy", value_set=[1], mostly=1 - check["threshold"]
        ),
    )


def _value_counts(suite: Suite, field: str, start: dt.datetime, end: dt.datetime) -> dict:
    """Counts per value: GX's drift expectation (KL divergence) reports the observed partition
    as shares; a row count turns them into counts for the project's TVD / PSI."""
    query = (
        f"SELECT COALESCE(({_field_sql(field)})::text, 'None') AS v FROM {EVENTS} "
        f"WHERE {_window_sql(start, end)}"
    )
    found = suite.validate(
        query,
        gxe.ExpectColumnKLDivergenceToBeLessThan(
            column="v", partition_object={"values": ["-"], "weights": [1.0]}, threshold=1.0
        ),
        "COMPLETE",
    )
    total = _row_count(suite, query)
    partition = found["result"].get("details", {}).get("observed_partition") or {}
    shares = zip(partition.get("values", []), partition.get("weights", []), strict=True)
    return {str(value): round(weight * total) for value, weight in shares if round(weight * total)}


def distribution_drift(suite: Suite, now: dt.datetime, check: dict) -> dict:
    """Value counts now and in the baseline (the days before, or with same_window the same
    window on each of those days); TVD / PSI / vanished are judged by ours."""
    params = check["params"]
    start, end = _window(now, params)
    days = params.get("baseline_days", 7)
    if params.get("same_window"):
        baseline: dict[str, int] = {}
        for day in range(1, days + 1):
            shift = dt.timedelta(days=day)
            counts = _value_counts(suite, params["field"], start - shift, end - shift)
            for value, n in counts.items():
                baseline[value] = baseline.get(value, 0) + n
    else:
        baseline = _value_counts(suite, params["field"], start - dt.timedelta(days=days), start)
    return {"current": _value_counts(suite, params["field"], start, end), "baseline": baseline}


def funnel_sanity(suite: Suite, now: dt.datetime, check: dict) -> dict:
    where = (
        _window_sql(*_window(now, check["params"], 1440), ("purchase",))
        .replace("timestamp", "p.timestamp")
        .replace("event_type", "p.event_type")
    )
    return suite.validate(
        f"SELECT EXISTS (SELECT 1 FROM {EVENTS} c WHERE c.session_id = p.session_id AND "
        f"c.event_type = 'checkout_start') AS has_checkout FROM {EVENTS} p WHERE {where}",
        gxe.ExpectColumnValuesToBeInSet(
            column="has_checkout", value_set=[True], mostly=1 - check["threshold"]
        ),
    )


def validation_pass_rate(suite: Suite, now: dt.datetime, check: dict) -> dict:
    start, end = _window(now, check["params"])
    events = _window_sql(start, end, column="received_at")
    return suite.validate(
        f"SELECT true AS accepted FROM {EVENTS} WHERE {events} UNION ALL SELECT false "
        f"FROM events_rejectedevent WHERE status = 'quarantined' AND {events}",
        gxe.ExpectColumnValuesToBeInSet(
            column="accepted", value_set=[True], mostly=check["threshold"]
        ),
    )


def late_share(suite: Suite, now: dt.datetime, check: dict) -> dict:
    """Events received in the window over lag_minutes after their timestamp: GX decides."""
    params = check["params"]
    lag = int(params.get("lag_minutes", 60))
    where = _window_sql(*_window(now, params), column="received_at")
    return suite.validate(
        f"SELECT received_at <= timestamp + interval '{lag} minutes' AS on_time FROM {EVENTS} "
        f"WHERE {where}",
        gxe.ExpectColumnValuesToBeInSet(
            column="on_time", value_set=[True], mostly=1 - check["threshold"]
        ),
    )


def top_share(suite: Suite, now: dt.datetime, check: dict) -> dict:
    """GX's value counts of the field in the window; the busiest value's share is ours."""
    field = check["params"]["field"]
    counts = _value_counts(suite, field, *_window(now, check["params"]))
    top = max((n for value, n in counts.items() if value != "None"), default=0)
    return {"top": top, "total": sum(counts.values())}


def mean_shift(suite: Suite, now: dt.datetime, check: dict) -> dict:
    """GX observes the baseline mean, then decides: the window's mean within a factor of
    `threshold` of it either way (ExpectColumnMeanToBeBetween)."""
    params = check["params"]
    field = params["field"]
    start, end = _window(now, params)
    before = start - dt.timedelta(days=params.get("baseline_days", 7))

    def query(low: dt.datetime, high: dt.datetime) -> str:
        return f"SELECT {field} AS v FROM {EVENTS} WHERE {field} IS NOT NULL AND " + (
            _window_sql(low, high)
        )

    observed = suite.validate(query(before, start), gxe.ExpectColumnMeanToBeBetween(column="v"))
    mean = observed["result"]["observed_value"]
    counts = [_row_count(suite, query(start, end)), _row_count(suite, query(before, start))]
    if not mean:
        return {"success": True, "counts": counts}
    found = suite.validate(
        query(start, end),
        gxe.ExpectColumnMeanToBeBetween(
            column="v",
            min_value=float(mean) / check["threshold"],
            max_value=float(mean) * check["threshold"],
        ),
    )
    return {"success": found["success"], "counts": counts}


KINDS = {
    "freshness": freshness,
    "volume_anomaly": volume,
    "null_rate": null_rate,
    "duplicate_rate": duplicate_rate,
    "distribution_drift": distribution_drift,
    "funnel_sanity": funnel_sanity,
    "validation_pass_rate": validation_pass_rate,
    "late_share": late_share,
    "top_share": top_share,
    "mean_shift": mean_shift,
}


def main() -> None:
    spec = json.load(sys.stdin)
    now = dt.datetime.fromisoformat(spec["now"])
    suite = Suite(spec["url"])
    out = []
    for check in spec["checks"]:
        started = time.perf_counter()
        found = KINDS[check["kind"]](suite, now, check)
        seconds = time.perf_counter() - started
        result = found.pop("result", None) or {}
        if "element_count" in result:
            found["element_count"] = result["element_count"]
        out.append({"name": check["name"], "seconds": seconds, **found})
        print(f"gx {check['name']}: {seconds:.2f} s", file=sys.stderr)
    json.dump({"checks": out}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
