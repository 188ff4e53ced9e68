"""The metric math of every dataset-check kind, including the edge cases: no data, all null,
zero or flat baseline, missing categories, and parameter validation."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from quality.engine import checks
from quality.engine.checks import FAIL, PASS, SKIPPED

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_freshness_fails_when_the_newest_event_is_too_old():
    result = checks.freshness_evaluate(
        NOW - dt.timedelta(minutes=20), now=NOW, threshold_minutes=15
    )
    assert result.outcome == FAIL and result.metric == pytest.approx(20)


def test_freshness_passes_for_recent_and_future_events():
    recent = checks.freshness_evaluate(NOW - dt.timedelta(minutes=2), now=NOW, threshold_minutes=15)
    future = checks.freshness_evaluate(NOW + dt.timedelta(minutes=2), now=NOW, threshold_minutes=15)
    assert recent.outcome == PASS and future.outcome == PASS and future.metric == 0


def test_freshness_with_no_events_at_all_fails():
    """An empty table is the stalest data there is."""
    result = checks.freshness_evaluate(None, now=NOW, threshold_minutes=15)
    assert result.outcome == FAIL and result.metric is None


def test_volume_normal_hour_passes_and_a_drop_fails():
    baseline = [100, 104, 98, 101, 97, 103, 99]
    assert checks.volume_evaluate(102, baseline, threshold=3.5).outcome == PASS
    dropped = checks.volume_evaluate(10, baseline, threshold=3.5)
    assert dropped.outcome == FAIL and dropped.details["z"] < -3.5


def test_volume_direction_spike_ignores_drops():
    baseline = [100, 104, 98, 101, 97, 103, 99]
    assert checks.volume_evaluate(10, baseline, threshold=3.5, direction="spike").outcome == PASS
    assert checks.volume_evaluate(300, baseline, threshold=3.5, direction="spike").outcome == FAIL


def test_volume_is_robust_to_one_outlier_day_in_the_baseline():
    """Median and MAD: one Black-Friday day in the baseline does not mask a normal hour."""
    baseline = [100, 102, 98, 5000, 101, 99, 100]
    assert checks.volume_evaluate(100, baseline, threshold=3.5).outcome == PASS


def test_volume_with_a_zero_baseline_does_not_divide_by_zero():
    """All-zero baseline: silence stays silent, and traffic appearing is a finite spike."""
    zero = [0, 0, 0, 0]
    quiet = checks.volume_evaluate(0, zero, threshold=3.5)
    assert quiet.outcome == PASS and quiet.metric == 0
    spike = checks.volume_evaluate(50, zero, threshold=3.5)
    assert spike.outcome == FAIL and math.isfinite(spike.metric)


def test_volume_with_a_flat_baseline_uses_poisson_noise_as_scale():
    """MAD is 0 for a flat baseline; a change within counting noise must not fail."""
    assert checks.volume_evaluate(108, [100] * 7, threshold=3.5).outcome == PASS
    assert checks.volume_evaluate(150, [100] * 7, threshold=3.5).outcome == FAIL


def test_volume_without_enough_baseline_days_is_skipped():
    result = checks.volume_evaluate(100, [90, 95], threshold=3.5, min_baseline_days=3)
    assert result.outcome == SKIPPED and result.metric is None


@pytest.mark.parametrize(
    ("numerator", "denominator", "outcome", "metric"),
    [
        (0, 0, SKIPPED, None),  # no data
        (100, 100, FAIL, 1.0),  # all null
        (1, 100, PASS, 0.01),  # at the threshold is not above it
        (2, 100, FAIL, 0.02),
        (0, 5, PASS, 0.0),
    ],
)
def test_rate_checks(numerator, denominator, outcome, metric):
    """Null rate, duplicate rate and funnel sanity share one rule: fail above the threshold."""
    result = checks.rate_evaluate(numerator, denominator, threshold=0.01, what="null rate")
    assert result.outcome == outcome
    assert result.metric == (pytest.approx(metric) if metric is not None else None)


def test_drift_identical_distributions_pass():
    counts = {"desktop": 500, "mobile": 400, "tablet": 100}
    result = checks.drift_evaluate(counts, counts, threshold=0.1)
    assert result.outcome == PASS and result.metric == pytest.approx(0)


def test_drift_tvd_of_a_shifted_mix():
    baseline = {"desktop": 500, "mobile": 500}
    current = {"desktop": 200, "mobile": 800}
    result = checks.drift_evaluate(current, baseline, threshold=0.2)
    assert result.metric == pytest.approx(0.3) and result.outcome == FAIL


def test_drift_with_a_new_category_and_psi_stays_finite():
    """A category absent from the baseline (zero share) must not make PSI infinite."""
    baseline = {"desktop": 100, "mobile": 100}
    current = {"desktop": 90, "mobile": 90, "smart_tv": 20}
    psi = checks.drift_evaluate(current, baseline, threshold=0.2, method="psi")
    assert math.isfinite(psi.metric) and psi.metric > 0
    tvd = checks.drift_evaluate(current, baseline, threshold=0.2)
    assert tvd.metric == pytest.approx(0.1)


def test_drift_with_no_baseline_or_too_few_events_is_skipped():
    assert checks.drift_evaluate({"a": 100}, {}, threshold=0.1).outcome == SKIPPED
    assert checks.drift_evaluate({"a": 10}, {"a": 500}, threshold=0.1).outcome == SKIPPED


def test_pass_rate_below_target_fails_and_at_target_passes():
    assert checks.pass_rate_evaluate(994, 6, target=0.995).outcome == FAIL
    at_target = checks.pass_rate_evaluate(995, 5, target=0.995)
    assert at_target.outcome == PASS and at_target.metric == pytest.approx(0.995)


def test_pass_rate_without_events_is_skipped():
    assert checks.pass_rate_evaluate(0, 0, target=0.995).outcome == SKIPPED
    assert checks.pass_rate_evaluate(0, 3, target=0.995).metric == 0


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("teleport", {}, "Unknown kind"),
        ("null_rate", {"field": "colour"}, "'field' must be one of"),
        ("null_rate", {"field": "event_type"}, "'field' must be one of"),
        ("distribution_drift", {"field": "price"}, "'field' must be one of"),
        ("distribution_drift", {"field": "country", "method": "kl"}, "tvd, psi or vanished"),
        ("volume_anomaly", {"direction": "sideways"}, "both, drop or spike"),
        ("volume_anomaly", {"window_minutes": 0}, "whole number"),
        ("freshness", {"event_types": ["login"]}, "event_types"),
        ("freshness", {"window": 5}, "Unknown parameter"),
    ],
)
def test_invalid_check_parameters(kind, params, message):
    with pytest.raises(checks.CheckParamError, match=message):
        checks.check_params_validate(kind, params)


def test_valid_default_shaped_parameters_pass_validation():
    checks.check_params_validate("null_rate", {"field": "currency", "event_types": ["purchase"]})
    checks.check_params_validate("distribution_drift", {"field": "device_type", "method": "psi"})


def test_check_touches_names_fields_and_event_types_for_dashboard_links():
    assert checks.check_touches(
        "null_rate", {"field": "currency", "event_types": ["purchase"]}
    ) == (
        ["currency"],
        ["purchase"],
    )
    assert checks.check_touches("funnel_sanity", {}) == (
        ["session_id"],
        ["checkout_start", "purchase"],
    )
    assert checks.check_touches("freshness", {}) == ([], [])
