"""Running dataset checks: gather counts (selectors), judge them (engine), store a CheckRun,
and open, update or auto-resolve the check's incident. Also the per-rule failure-rate watch.

Idempotent and safe on several workers: `checks_run_due` claims a due check with one
conditional UPDATE (only one worker wins a given slot), and incidents are opened through
`incident_record_failure`, which never creates a second unresolved incident per source.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import structlog
from django.db.models import Q
from django.utils import timezone

from quality import selectors
from quality.engine import checks as engine
from quality.engine.incident_policy import RESOLVE_AFTER_PASSES
from quality.engine.volume import BaselineDay, weekday_factors
from quality.models import CheckRun, QualityCheck, QualityRule
from quality.services.check_shapes import late_share, mean_shift, min_events, top_share
from quality.services.incidents import (
    IncidentSource,
    incident_record_failure,
    incident_resolve_auto,
)

logger = structlog.get_logger(__name__)

RULE_RATE_WINDOW = dt.timedelta(hours=1)
RULE_RATE_MIN_EVENTS = 20
CLAIM_SLACK = dt.timedelta(seconds=5)  # a 1-minute beat should not skip a 1-minute check


def _window(check: QualityCheck, now: dt.datetime, default: int = 60) -> tuple:
    minutes = check.params.get("window_minutes", default)
    return now - dt.timedelta(minutes=minutes), now


def _freshness(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    newest = selectors.events_newest_timestamp(check.params.get("event_types") or ())
    return engine.freshness_evaluate(newest, now=now, threshold_minutes=check.threshold)


def _volume(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    """The same window on each earlier day (up to baseline_days, none before the first event),
    and the whole UTC days of that period for the weekday levels (quality.engine.volume)."""
    params = check.params
    window = dt.timedelta(minutes=params.get("window_minutes", 60))
    days = params.get("baseline_days", 7)
    oldest = selectors.events_oldest_timestamp()
    windows, baseline_days = [(now - window, now)], []
    for day in range(1, days + 1):
        end = now - dt.timedelta(days=day)
        if oldest is not None and end - window >= oldest:  # days before any data are unknown
            windows.append((end - window, end))
            baseline_days.append(day)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    whole_days = [
        midnight - dt.timedelta(days=day)
        for day in range(1, days + 1)
        if oldest is not None and midnight - dt.timedelta(days=day) >= oldest
    ]
    counts = selectors.event_counts_in_windows(
        windows + [(start, start + dt.timedelta(days=1)) for start in whole_days]
    )
    baseline = [
        BaselineDay(day, (now - dt.timedelta(days=day)).weekday(), count)
        for day, count in zip(baseline_days, counts[1 : len(windows)], strict=True)
    ]
    day_totals = [
        (start.weekday(), total)
        for start, total in zip(whole_days, counts[len(windows) :], strict=True)
    ]
    return engine.volume_evaluate(
        counts[0],
        baseline,
        threshold=check.threshold,
        direction=params.get("direction", "both"),
        min_baseline_days=params.get("min_baseline_days", 3),
        weekday=now.weekday(),
        factors=weekday_factors(day_totals),
        dispersion=params.get("dispersion", 1.0),
    )


def _null_rate(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    start, end = _window(check, now)
    field = check.params["field"]
    empty, total = selectors.field_null_counts(
        field, check.params.get("event_types") or (), start, end
    )
    return engine.rate_evaluate(
        empty, total, threshold=check.threshold, what=f"{field} null rate", **min_events(check)
    )


def _duplicate_rate(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    start, end = _window(check, now)
    duplicates, total = selectors.duplicate_counts(start, end)
    return engine.rate_evaluate(
        duplicates, total, threshold=check.threshold, what="duplicate rate", **min_events(check)
    )


def _drift(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    """Baseline: the baseline_days before the window, or with same_window the same window on
    each of those days (a mix with a daily rhythm compared with the same time of day)."""
    params = check.params
    start, end = _window(check, now)
    days = params.get("baseline_days", 7)
    current = selectors.category_counts(params["field"], start, end)
    if params.get("same_window"):
        baseline: dict[str, int] = {}
        for day in range(1, days + 1):
            shift = dt.timedelta(days=day)
            for value, n in selectors.category_counts(
                params["field"], start - shift, end - shift
            ).items():
                baseline[value] = baseline.get(value, 0) + n
    else:
        baseline = selectors.category_counts(
            params["field"], start - dt.timedelta(days=days), start
        )
    options = {"min_expected": params["min_expected"]} if "min_expected" in params else {}
    return engine.drift_evaluate(
        current,
        baseline,
        threshold=check.threshold,
        method=params.get("method", "tvd"),
        min_events=params.get("min_events", 50),
        **options,
    )


def _funnel(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    start, end = _window(check, now, default=1440)
    orphans, purchases = selectors.purchases_without_checkout(start, end)
    return engine.rate_evaluate(
        orphans,
        purchases,
        threshold=check.threshold,
        what="share of purchases without checkout",
        **min_events(check),
    )


def _pass_rate(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    start, end = _window(check, now)
    accepted, rejected = selectors.validation_counts(start, end)
    return engine.pass_rate_evaluate(
        accepted, rejected, target=check.threshold, min_events=check.params.get("min_events", 1)
    )


def _custom_sql(check: QualityCheck, now: dt.datetime) -> engine.CheckResult:
    value = selectors.custom_sql_value(check.params["sql"])
    return engine.custom_sql_evaluate(
        value, threshold=check.threshold, fail_when=check.params.get("fail_when", "above")
    )


_EVALUATORS: dict[str, Callable[[QualityCheck, dt.datetime], engine.CheckResult]] = {
    "freshness": _freshness,
    "volume_anomaly": _volume,
    "null_rate": _null_rate,
    "duplicate_rate": _duplicate_rate,
    "distribution_drift": _drift,
    "funnel_sanity": _funnel,
    "validation_pass_rate": _pass_rate,
    "custom_sql": _custom_sql,
    "late_share": late_share,
    "top_share": top_share,
    "mean_shift": mean_shift,
}


def check_samples(check: QualityCheck, now: dt.datetime) -> dict:
    """Up to SAMPLE_LIMIT ids of the rows behind a failure, from the window the check counted;
    {} for kinds without rows to point at (volume, drift, freshness, custom SQL)."""
    if check.kind == "validation_pass_rate":
        return {"kind": "quarantine", "ids": selectors.quarantined_sample(*_window(check, now))}
    if check.kind == "null_rate":
        event_types = check.params.get("event_types") or ()
        start, end = _window(check, now)
        ids = selectors.null_rows_sample(check.params["field"], event_types, start, end)
    elif check.kind == "duplicate_rate":
        ids = selectors.duplicate_rows_sample(*_window(check, now))
    elif check.kind == "funnel_sanity":
        ids = selectors.orphan_purchases_sample(*_window(check, now, default=1440))
    else:
        return {}
    return {"kind": "event", "ids": ids}


def check_source(check: QualityCheck) -> IncidentSource:
    fields, event_types = engine.check_touches(check.kind, check.params)
    return IncidentSource(
        key=f"check:{check.pk}",
        source_type="check",
        title=f"Check {check.name} failing ({check.kind})",
        severity=check.severity,
        lower_is_worse=check.kind == "validation_pass_rate"
        or (check.kind == "custom_sql" and check.params.get("fail_when") == "below"),
        quality_check_id=check.pk,
        fields=fields,
        event_types=event_types,
    )


def check_evaluate(check: QualityCheck, now: dt.datetime) -> tuple[engine.CheckResult, float]:
    """Judge one check as of `now` and write nothing: (result, duration in ms). A check that
    raises comes back as an "error" result, so one broken check does not stop the others."""
    started = time.perf_counter()
    try:
        result = _EVALUATORS[check.kind](check, now)
    except Exception as exc:
        logger.exception("quality.check_error", check=check.name)
        result = engine.CheckResult("error", None, f"{type(exc).__name__}: {exc}"[:500])
    result = engine.CheckResult(
        result.outcome, result.metric, result.message, _jsonable(result.details)
    )
    return result, (time.perf_counter() - started) * 1000


def check_run(check_id: int, *, now: dt.datetime | None = None) -> CheckRun:
    """Run one check now: store a CheckRun; open/update the incident on fail, resolve on pass."""
    now = now or timezone.now()
    check = QualityCheck.objects.get(pk=check_id)
    result, duration_ms = check_evaluate(check, now)
    return check_result_record(check, result, now=now, duration_ms=duration_ms)


def check_result_record(
    check: QualityCheck, result: engine.CheckResult, *, now: dt.datetime, duration_ms: float
) -> CheckRun:
    """Store a judged run and apply the incident policy: open, re-alert when much worse or
    turned around, or count a pass towards the auto-resolve (RESOLVE_AFTER_PASSES in a row)."""
    samples = check_samples(check, now) if result.outcome == engine.FAIL else {}
    run = CheckRun.objects.create(
        quality_check=check,
        ran_at=now,
        duration_ms=duration_ms,
        metric_value=result.metric,
        threshold=check.threshold,
        outcome=result.outcome,
        message=result.message,
        details=result.details,
        samples=samples,
    )
    QualityCheck.objects.filter(pk=check.pk).filter(
        Q(last_run_at__isnull=True) | Q(last_run_at__lt=now)
    ).update(last_run_at=now)
    logger.info(
        "quality.check_run",
        check=check.name,
        kind=check.kind,
        outcome=result.outcome,
        metric=result.metric,
        threshold=check.threshold,
        duration_ms=round(duration_ms, 2),
    )
    source = check_source(check)
    if result.outcome == engine.FAIL:
        incident_record_failure(
            source,
            metric=result.metric,
            threshold=check.threshold,
            message=result.message,
            now=now,
            sign=_sign(result),
        )
    elif result.outcome == engine.PASS:
        incident_resolve_auto(
            source.key, message=result.message, now=now, passes_needed=RESOLVE_AFTER_PASSES
        )
    return run


def _sign(result: engine.CheckResult) -> int:
    """The side a two-sided metric failed on (a volume spike +1, a drop -1), else 0."""
    z = result.details.get("z") if isinstance(result.details, dict) else None
    return 0 if not isinstance(z, int | float) or z == 0 else (1 if z > 0 else -1)


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def check_claim(check: QualityCheck, now: dt.datetime) -> bool:
    """Take this check's current slot; exactly one caller wins it (conditional UPDATE)."""
    due_before = now - dt.timedelta(minutes=check.interval_minutes) + CLAIM_SLACK
    claimed = (
        QualityCheck.objects.filter(pk=check.pk, enabled=True)
        .filter(Q(last_run_at__isnull=True) | Q(last_run_at__lte=due_before))
        .update(last_run_at=now)
    )
    return claimed == 1


def checks_due(now: dt.datetime) -> list[QualityCheck]:
    due = []
    for check in QualityCheck.objects.filter(enabled=True).order_by("name"):
        if check.last_run_at is None or check.last_run_at <= (
            now - dt.timedelta(minutes=check.interval_minutes) + CLAIM_SLACK
        ):
            due.append(check)
    return due


def checks_run_due(now: dt.datetime | None = None) -> list[CheckRun]:
    """Run every enabled check whose interval has elapsed (the once-a-minute beat task)."""
    now = now or timezone.now()
    return [check_run(check.pk, now=now) for check in checks_due(now) if check_claim(check, now)]


def checks_selected(names: list[str] | None = None) -> list[QualityCheck]:
    """All enabled checks, or the named ones even if disabled, by name."""
    rows = QualityCheck.objects.order_by("name")
    return list(rows.filter(name__in=names) if names else rows.filter(enabled=True))


def checks_run(names: list[str] | None = None, *, now: dt.datetime | None = None) -> list[CheckRun]:
    """Run checks on demand (all enabled ones, or the named ones even if disabled)."""
    now = now or timezone.now()
    return [check_run(check.pk, now=now) for check in checks_selected(names)]


def checks_evaluate(
    names: list[str] | None = None, *, now: dt.datetime | None = None
) -> list[tuple[QualityCheck, engine.CheckResult, float]]:
    """Judge checks as of `now` without storing runs, opening incidents or alerting: the
    CI / code-review mode of `run_quality_checks --no-incidents`."""
    now = now or timezone.now()
    return [(check, *check_evaluate(check, now)) for check in checks_selected(names)]


def rule_rates_evaluate(now: dt.datetime | None = None) -> list[dict]:
    """Open (or update) an incident for each rule failing more than its alert threshold of the
    events it checked in the last hour; resolve it once the rate is back under.

    Runs in the periodic task, never on the ingestion path: it reads the per-hour counters.
    """
    now = now or timezone.now()
    counts = {row["rule_id"]: row for row in selectors.rule_counts_since(now - RULE_RATE_WINDOW)}
    report = []
    for rule in QualityRule.objects.all():
        key = f"rule:{rule.pk}"
        row = counts.get(rule.pk)
        if not rule.enabled:
            incident_resolve_auto(key, message="the rule was disabled", now=now)
            continue
        if row is None or row["evaluated"] < RULE_RATE_MIN_EVENTS:
            continue
        failed = row["rejected"] + row["warned"]
        rate = failed / row["evaluated"]
        verb = "rejects" if rule.severity == "error" else "warns about"
        message = (
            f"{rule.name} {verb} {rate:.1%} of events ({failed} of {row['evaluated']}) in the "
            f"last hour; threshold {rule.alert_rate_threshold:.1%}"
        )
        report.append({"rule": rule.name, "rate": rate, "evaluated": row["evaluated"]})
        if rate > rule.alert_rate_threshold:
            source = IncidentSource(
                key=key,
                source_type="rule",
                title=f"Rule {rule.name} {verb} too many events",
                severity=rule.severity,
                rule_id=rule.pk,
                fields=[rule.field.split(".", 1)[0]],
                event_types=list(rule.event_types or []),
            )
            incident_record_failure(
                source, metric=rate, threshold=rule.alert_rate_threshold, message=message, now=now
            )
        else:
            incident_resolve_auto(key, message=message, now=now, passes_needed=RESOLVE_AFTER_PASSES)
    return report
