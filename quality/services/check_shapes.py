"""Evaluators of the shape checks (late batch, one value flooding, a numeric field changing
scale): selectors count, the engine judges (ADR 0020)."""

from __future__ import annotations

import datetime as dt

from quality import selectors
from quality.engine import checks as engine
from quality.models import QualityCheck


def window(check: QualityCheck, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return now - dt.timedelta(minutes=check.params.get("window_minutes", 60)), now


def late_share(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    lag = dt.timedelta(minutes=check.params.get("lag_minutes", 60))
    late, total = selectors.late_counts(*window(check, now), lag)
    what = f"share of events received over {lag.total_seconds() / 60:g} min late"
    return engine.rate_evaluate(
        late, total, threshold=check.threshold, what=what, **min_events(check)
    )


def top_share(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    field = check.params["field"]
    top, total, value = selectors.top_value_count(field, *window(check, now))
    result = engine.rate_evaluate(
        top, total, threshold=check.threshold, what=f"share of the top {field}", **min_events(check)
    )
    if result.outcome != engine.FAIL:
        return result
    return engine.CheckResult(
        result.outcome, result.metric, f"{result.message} ({field} {value!r})", result.details
    )


def mean_shift(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    field = check.params["field"]
    start, end = window(check, now)
    baseline_start = start - dt.timedelta(days=check.params.get("baseline_days", 7))
    return engine.mean_shift_evaluate(
        selectors.field_mean(field, start, end),
        selectors.field_mean(field, baseline_start, start),
        threshold=check.threshold,
        **min_events(check),
    )


def min_events(check: QualityCheck) -> dict[str, int]:
    return {"min_events": check.params.get("min_events", 1)}
