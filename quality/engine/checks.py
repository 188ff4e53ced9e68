"""Dataset checks: parameter validation and the metric math, on plain numbers.

The database work (counting events in windows) lives in `quality.selectors`; these functions
take its counts and decide pass / fail / skipped, so every edge case (no data, all null, zero
baseline) is unit-tested without a database.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlparse

from events.schema import EVENT_TYPES
from quality.engine.kind_help import KIND_HELP as KIND_HELP  # re-exported: admin, history
from quality.engine.rules import NUMBER_FIELDS, STRING_FIELDS
from quality.engine.volume import (
    BaselineDay,
    seasonal_baseline,
    volume_noise,
)

CHECK_KINDS = (
    "freshness",
    "volume_anomaly",
    "null_rate",
    "duplicate_rate",
    "distribution_drift",
    "funnel_sanity",
    "validation_pass_rate",
    "custom_sql",
    "late_share",
    "top_share",
    "mean_shift",
)
PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
DRIFT_FIELDS = frozenset({"event_type", "device_type", "country", "currency", "category"})
NULLABLE_FIELDS = (STRING_FIELDS | NUMBER_FIELDS) - {"event_type"}
TOP_SHARE_FIELDS = frozenset({"user_id", "session_id", "country", "page_url", "product_id"})
# `properties.<key>` (nested: `properties.a.b`) names a custom property in null_rate and drift.
PROPERTY_PATH = re.compile(r"^properties(\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,4}$")
SAMPLE_LIMIT = 20  # failing-row ids kept per failed run

_COMMON = {"window_minutes"}
_ALLOWED_PARAMS = {
    "freshness": {"event_types"},
    "volume_anomaly": _COMMON | {"baseline_days", "min_baseline_days", "direction", "dispersion"},
    "null_rate": _COMMON | {"field", "event_types", "min_events"},
    "duplicate_rate": _COMMON | {"min_events"},
    "distribution_drift": _COMMON
    | {"field", "method", "baseline_days", "min_events", "same_window", "min_expected"},
    "funnel_sanity": _COMMON | {"min_events"},
    "validation_pass_rate": _COMMON | {"min_events"},
    "custom_sql": {"sql", "fail_when"},
    "late_share": _COMMON | {"lag_minutes", "min_events"},
    "top_share": _COMMON | {"field", "min_events"},
    "mean_shift": _COMMON | {"field", "baseline_days", "min_events"},
}


class CheckParamError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CheckResult:
    outcome: str
    metric: float | None
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


def _positive_int(params: Mapping[str, Any], key: str) -> None:
    value = params.get(key)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CheckParamError(f"'{key}' must be a whole number >= 1.")


def check_params_validate(kind: str, params: Mapping[str, Any]) -> None:
    """Raise CheckParamError when a check's parameters cannot work."""
    if kind not in CHECK_KINDS:
        raise CheckParamError(f"Unknown kind {kind!r}.")
    if not isinstance(params, Mapping):
        raise CheckParamError("Parameters must be a JSON object.")
    unknown = sorted(set(params) - _ALLOWED_PARAMS[kind])
    if unknown:
        allowed = ", ".join(sorted(_ALLOWED_PARAMS[kind])) or "none"
        raise CheckParamError(f"Unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}.")
    for key in (
        "window_minutes",
        "baseline_days",
        "min_baseline_days",
        "min_events",
        "lag_minutes",
    ):
        _positive_int(params, key)
    dispersion = params.get("dispersion", 1)
    if isinstance(dispersion, bool) or not isinstance(dispersion, int | float) or dispersion < 1:
        raise CheckParamError("'dispersion' must be a number >= 1.")
    event_types = params.get("event_types", [])
    if not isinstance(event_types, list) or set(event_types) - set(EVENT_TYPES):
        raise CheckParamError(f"'event_types' must be a list of: {', '.join(EVENT_TYPES)}.")
    if kind == "null_rate" and not _field_ok(params.get("field"), NULLABLE_FIELDS):
        raise CheckParamError(
            f"'field' must be one of: {', '.join(sorted(NULLABLE_FIELDS))}, or properties.<key>."
        )
    if kind == "distribution_drift":
        if not _field_ok(params.get("field"), DRIFT_FIELDS):
            raise CheckParamError(
                f"'field' must be one of: {', '.join(sorted(DRIFT_FIELDS))}, or properties.<key>."
            )
        if params.get("method", "tvd") not in ("tvd", "psi", "vanished"):
            raise CheckParamError("'method' must be tvd, psi or vanished.")
        if not isinstance(params.get("same_window", False), bool):
            raise CheckParamError("'same_window' must be true or false.")
    if kind == "top_share" and params.get("field") not in TOP_SHARE_FIELDS:
        raise CheckParamError(f"'field' must be one of: {', '.join(sorted(TOP_SHARE_FIELDS))}.")
    if kind == "mean_shift" and params.get("field") not in NUMBER_FIELDS:
        raise CheckParamError(f"'field' must be one of: {', '.join(sorted(NUMBER_FIELDS))}.")
    if kind == "volume_anomaly" and params.get("direction", "both") not in (
        "both",
        "drop",
        "spike",
    ):
        raise CheckParamError("'direction' must be both, drop or spike.")
    if kind == "custom_sql":
        custom_sql_validate(params.get("sql"))
        if params.get("fail_when", "above") not in ("above", "below"):
            raise CheckParamError("'fail_when' must be above or below.")


def is_property_path(name: object) -> bool:
    return isinstance(name, str) and bool(PROPERTY_PATH.match(name))


def _field_ok(name: object, columns: frozenset[str]) -> bool:
    return name in columns or is_property_path(name)


def custom_sql_validate(sql: object) -> str:
    """Return the query without a trailing semicolon, or raise: it must be one SELECT (a WITH
    ... SELECT counts). This is a guard for clear form errors; the read-only transaction it runs
    in is what actually refuses writes (e.g. a data-modifying CTE)."""
    if not isinstance(sql, str) or not sql.strip():
        raise CheckParamError("'sql' must be a non-empty SELECT query.")
    statements = [stmt for stmt in sqlparse.parse(sql) if str(stmt).strip().strip(";").strip()]
    if len(statements) != 1:
        raise CheckParamError("'sql' must be exactly one statement (no ';' between queries).")
    if statements[0].get_type() != "SELECT":
        raise CheckParamError("'sql' must be a SELECT query (read-only).")
    return str(statements[0]).strip().rstrip(";").strip()


def custom_sql_evaluate(
    value: object, *, threshold: float, fail_when: str = "above"
) -> CheckResult:
    """Judge the number a custom query returned; NULL (no row) is skipped, not failed."""
    if value is None:
        return CheckResult(SKIPPED, None, "the query returned no value (NULL or no row)")
    try:
        metric = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CheckParamError(f"the query returned {value!r}, not a number") from None
    if fail_when == "above":
        return _fail_above(metric, threshold, "custom query value")
    outcome = FAIL if metric < threshold else PASS
    relation = "below" if outcome == FAIL else "at or above"
    return CheckResult(
        outcome, metric, f"custom query value {metric:.4g} is {relation} threshold {threshold:g}"
    )


def check_touches(kind: str, params: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(fields, event types) a check is about, so dashboards can link incidents to charts.
    Empty lists mean every field / every event type."""
    if kind == "null_rate":
        return [params["field"].split(".", 1)[0]], list(params.get("event_types") or [])
    if kind == "distribution_drift":
        return [params["field"].split(".", 1)[0]], []
    if kind == "funnel_sanity":
        return ["session_id"], ["checkout_start", "purchase"]
    if kind == "freshness":
        return [], list(params.get("event_types") or [])
    return [], []


def _fail_above(metric: float, threshold: float, what: str) -> CheckResult:
    outcome = FAIL if metric > threshold else PASS
    relation = "above" if outcome == FAIL else "within"
    return CheckResult(
        outcome, metric, f"{what} {metric:.4g} is {relation} threshold {threshold:g}"
    )


def freshness_evaluate(
    newest: dt.datetime | None, *, now: dt.datetime, threshold_minutes: float
) -> CheckResult:
    if newest is None:
        return CheckResult(FAIL, None, "no events are stored at all")
    age_minutes = max((now - newest).total_seconds() / 60, 0.0)
    return _fail_above(age_minutes, threshold_minutes, "newest event age (minutes)")


def robust_z(current: float, baseline: Sequence[float]) -> tuple[float, float, float]:
    """(z, median, scale). Scale is 1.4826·MAD, floored at the Poisson noise √median (and 1),
    so a flat or all-zero baseline does not turn a tiny change into an infinite score."""
    median = statistics.median(baseline)
    mad = statistics.median(abs(value - median) for value in baseline)
    scale = max(1.4826 * mad, math.sqrt(max(median, 1.0)))
    return (current - median) / scale, median, scale


def volume_evaluate(
    current: int,
    baseline: Sequence[int] | Sequence[BaselineDay],
    *,
    threshold: float,
    direction: str = "both",
    min_baseline_days: int = 3,
    weekday: int | None = None,
    factors: Mapping[int, float] | None = None,
    dispersion: float = 1.0,
) -> CheckResult:
    """Plain counts are a flat baseline; BaselineDay rows with the current `weekday` make it
    seasonal (quality.engine.volume). `metric` is the z-score on the failing side(s)."""
    days = [day for day in baseline if isinstance(day, BaselineDay)]
    if days and weekday is not None:
        expected_values, mode = seasonal_baseline(days, weekday=weekday, factors=factors or {})
    else:
        expected_values = [float(getattr(day, "count", day)) for day in baseline]
        mode = "previous days"
    counts = [int(getattr(day, "count", day)) for day in baseline]
    if len(expected_values) < min_baseline_days:
        return CheckResult(
            SKIPPED,
            None,
            f"needs {min_baseline_days} baseline days with data, has {len(expected_values)}",
            {"current": current, "baseline": counts},
        )
    median = statistics.median(expected_values)
    scale = volume_noise(median, expected_values, dispersion)
    z = (current - median) / scale
    metric = {"both": abs(z), "drop": -z, "spike": z}[direction]
    details = {
        "current": current,
        "baseline": counts,
        "expected": round(median, 2),
        "noise": round(scale, 2),
        "mode": mode,
        "median": median,
        "z": z,
    }
    what = f"volume z-score ({current} vs expected {median:.0f}, {mode})"
    result = _fail_above(metric, threshold, what)
    return CheckResult(result.outcome, metric, result.message, details)


def rate_evaluate(
    numerator: int, denominator: int, *, threshold: float, what: str, min_events: int = 1
) -> CheckResult:
    """Share-type checks (null rate, duplicate rate, funnel sanity, late and top share): under
    `min_events` it is skipped, so one orphan purchase in 40 is not a 2.5% incident."""
    if denominator <= 0:
        return CheckResult(SKIPPED, None, f"no events to measure the {what} on")
    if denominator < min_events:
        return CheckResult(
            SKIPPED,
            None,
            f"only {denominator} events to measure the {what} on (needs {min_events})",
            {"numerator": numerator, "denominator": denominator},
        )
    result = _fail_above(numerator / denominator, threshold, what)
    details = {"numerator": numerator, "denominator": denominator}
    return CheckResult(result.outcome, result.metric, result.message, details)


def distribution_distance(
    current: Mapping[str, int], baseline: Mapping[str, int], method: str = "tvd"
) -> float:
    """Total variation distance (0..1) or population stability index between two count maps."""
    current_total, baseline_total = sum(current.values()), sum(baseline.values())
    categories = set(current) | set(baseline)
    if method == "tvd":
        return 0.5 * sum(
            abs(current.get(c, 0) / current_total - baseline.get(c, 0) / baseline_total)
            for c in categories
        )
    epsilon = 1e-4  # PSI is undefined for empty categories; the usual small floor
    psi = 0.0
    for category in categories:
        p = max(current.get(category, 0) / current_total, epsilon)
        q = max(baseline.get(category, 0) / baseline_total, epsilon)
        psi += (p - q) * math.log(p / q)
    return psi


def drift_evaluate(
    current: Mapping[str, int],
    baseline: Mapping[str, int],
    *,
    threshold: float,
    method: str = "tvd",
    min_events: int = 50,
    **vanished_options: int,
) -> CheckResult:
    current_total, baseline_total = sum(current.values()), sum(baseline.values())
    if current_total < min_events or baseline_total < min_events:
        return CheckResult(
            SKIPPED,
            None,
            f"needs {min_events} events in both windows "
            f"(current {current_total}, baseline {baseline_total})",
        )
    if method == "vanished":
        return vanished_evaluate(current, baseline, threshold=threshold, **vanished_options)
    distance = distribution_distance(current, baseline, method)
    result = _fail_above(distance, threshold, f"distribution drift ({method})")
    details = {"current": dict(current), "baseline": dict(baseline)}
    return CheckResult(result.outcome, distance, result.message, details)


def pass_rate_evaluate(
    accepted: int, rejected: int, *, target: float, min_events: int = 1
) -> CheckResult:
    total = accepted + rejected
    if total < max(min_events, 1):
        return CheckResult(SKIPPED, None, f"only {total} events in the window")
    rate = accepted / total
    outcome = FAIL if rate < target else PASS
    relation = "below" if outcome == FAIL else "at or above"
    return CheckResult(
        outcome,
        rate,
        f"validation pass rate {rate:.4%} is {relation} target {target:.2%}",
        {"accepted": accepted, "rejected": rejected},
    )


def mean_shift_evaluate(
    current: tuple[float | None, int],
    baseline: tuple[float | None, int],
    *,
    threshold: float,
    min_events: int = 1,
) -> CheckResult:
    """(mean, count) now and in the baseline: the metric is max(r, 1/r) of the two means, so
    prices sent in cents (x100) and a unit mix-up the other way (/100) both score 100."""
    (mean_now, n_now), (mean_before, n_before) = current, baseline
    if n_now < min_events or n_before < min_events or not mean_now or not mean_before:
        return CheckResult(
            SKIPPED, None, f"needs {min_events} values in both windows (now {n_now})"
        )
    ratio = mean_now / mean_before
    metric = max(ratio, 1 / ratio) if ratio > 0 else math.inf
    details = {"mean": mean_now, "baseline_mean": mean_before, "count": n_now}
    result = _fail_above(metric, threshold, f"mean {mean_now:.4g} vs {mean_before:.4g}: factor")
    return CheckResult(result.outcome, metric, result.message, details)


def vanished_evaluate(
    current: Mapping[str, int],
    baseline: Mapping[str, int],
    *,
    threshold: float,
    min_expected: int = 50,
) -> CheckResult:
    """Share of the baseline's traffic in values now (almost) gone: a value counts as gone
    when at least `min_expected` events were expected (baseline share x current total) and
    under 2% of that arrived (0 or 1 of 50: a live value's quiet spell is not that quiet).
    A country disappearing is one value; its share is large even where the distance of the
    whole mix (TVD, PSI) stays inside the noise."""
    current_total, baseline_total = sum(current.values()), sum(baseline.values())
    gone, judged = {}, 0
    for value, count in baseline.items():
        share = count / baseline_total
        expected = share * current_total
        if expected < min_expected:
            continue
        judged += 1
        if current.get(value, 0) < 0.02 * expected:
            gone[value] = share
    if not judged:
        return CheckResult(
            SKIPPED, None, f"no value is expected {min_expected} times in {current_total} events"
        )
    metric = sum(gone.values())
    names = ", ".join(sorted(gone)) or "none"
    result = _fail_above(metric, threshold, f"share of traffic in vanished values ({names})")
    details = {"current": dict(current), "baseline": dict(baseline), "vanished": sorted(gone)}
    return CheckResult(result.outcome, metric, result.message, details)
