"""The detection math (ADR 0020): the seasonal, session-aware volume baseline, minimum counts
on rate checks, the mean-shift check, and the incident policy (re-alert, hysteresis, reopen)."""

from __future__ import annotations

import datetime as dt

import pytest

from quality.engine import checks
from quality.engine import incident_policy as policy
from quality.engine.checks import FAIL, PASS, SKIPPED
from quality.engine.volume import BaselineDay, seasonal_baseline, volume_noise, weekday_factors

SAT, MON = 5, 0


def _week(weekday_count: int, weekend_count: int, today: int) -> list[BaselineDay]:
    """The same hour on the 7 previous days, `today` being the current weekday."""
    days = []
    for back in range(1, 8):
        weekday = (today - back) % 7
        days.append(BaselineDay(back, weekday, weekend_count if weekday >= 5 else weekday_count))
    return days


def test_weekday_factors_are_relative_to_the_average_day():
    factors = weekday_factors([(MON, 1000), (SAT, 1400), (SAT, 1400)])
    assert factors[MON] == pytest.approx(1000 / (3800 / 3))
    assert factors[SAT] == pytest.approx(1400 / (3800 / 3))
    assert weekday_factors([]) == {}


def test_one_week_of_history_scales_each_day_by_its_weekday_level():
    """A Saturday hour is expected at the weekend level, not at the weekday median."""
    days = _week(1000, 1400, today=SAT)
    factors = {weekday: (1.4 if weekday >= 5 else 1.0) for weekday in range(7)}
    expected, mode = seasonal_baseline(days, weekday=SAT, factors=factors)
    assert mode == "weekday-scaled days"
    assert expected == pytest.approx([1400.0] * 7)


def test_three_weeks_of_history_use_the_same_weekday_alone():
    days = [BaselineDay(7 * week, SAT, 1400 + week) for week in (1, 2, 3)]
    days += [BaselineDay(back, MON, 10) for back in (5, 12)]
    expected, mode = seasonal_baseline(days, weekday=SAT, factors={})
    assert mode == "same weekday" and expected == [1401.0, 1402.0, 1403.0]


def test_weekend_hour_passes_with_weekday_levels_and_fails_without():
    """The issue's false alarms: weekend traffic 40% above weekdays looked like a spike."""
    days = _week(1000, 1400, today=SAT)
    factors = weekday_factors([(day.weekday, day.count * 24) for day in days])
    seasonal = checks.volume_evaluate(
        1400, days, threshold=4, weekday=SAT, factors=factors, dispersion=6
    )
    flat = checks.volume_evaluate(1400, [day.count for day in days], threshold=4, dispersion=6)
    assert seasonal.outcome == PASS and seasonal.details["mode"] == "weekday-scaled days"
    assert flat.outcome == FAIL


def test_session_noise_widens_the_band_but_a_90_percent_drop_still_fails():
    days = _week(1000, 1000, today=MON)
    kwargs = {"threshold": 4, "weekday": MON, "factors": {}}
    # 1000 +- 4 sqrt(1000) is 874..1126 under Poisson; sessions of ~6 events scatter more.
    assert checks.volume_evaluate(860, days, **kwargs).outcome == FAIL
    assert checks.volume_evaluate(860, days, dispersion=6, **kwargs).outcome == PASS
    dropped = checks.volume_evaluate(100, days, dispersion=6, **kwargs)
    assert dropped.outcome == FAIL and dropped.details["z"] < -10


def test_volume_noise_takes_the_larger_of_scatter_and_session_noise():
    assert volume_noise(100, [100, 100, 100], 4) == pytest.approx(20.0)
    assert volume_noise(100, [50, 100, 150], 1) == pytest.approx(1.4826 * 50)
    assert volume_noise(0, [0, 0, 0], 6) >= 1


@pytest.mark.parametrize(
    ("numerator", "denominator", "outcome"),
    [(1, 40, SKIPPED), (1, 49, SKIPPED), (1, 50, PASS), (2, 50, FAIL), (0, 0, SKIPPED)],
)
def test_rate_checks_skip_under_their_minimum_count(numerator, denominator, outcome):
    """One orphan purchase in 40 is not a 2.5% incident; with 50 purchases it counts."""
    result = checks.rate_evaluate(
        numerator, denominator, threshold=0.02, what="orphans", min_events=50
    )
    assert result.outcome == outcome


def test_mean_shift_scores_a_unit_change_either_way():
    cents = checks.mean_shift_evaluate((4999.0, 300), (49.99, 9000), threshold=3)
    assert cents.outcome == FAIL and cents.metric == pytest.approx(100)
    back = checks.mean_shift_evaluate((0.4999, 300), (49.99, 9000), threshold=3)
    assert back.outcome == FAIL and back.metric == pytest.approx(100)
    assert checks.mean_shift_evaluate((55.0, 300), (49.99, 9000), threshold=3).outcome == PASS
    few = checks.mean_shift_evaluate((4999.0, 5), (49.99, 9000), threshold=3, min_events=100)
    assert few.outcome == SKIPPED


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("top_share", {"field": "price"}),
        ("mean_shift", {"field": "country"}),
        ("volume_anomaly", {"dispersion": 0.5}),
        ("late_share", {"lag_minutes": 0}),
        ("duplicate_rate", {"min_events": 0}),
    ],
)
def test_new_parameters_are_validated(kind, params):
    with pytest.raises(checks.CheckParamError):
        checks.check_params_validate(kind, params)


def test_realert_when_the_metric_gets_materially_worse():
    alerted = policy.Reading(0.06)  # null rate 6% vs 5%: 1 point past
    assert policy.realert_reason(alerted, policy.Reading(0.065), threshold=0.05) is None
    assert policy.realert_reason(alerted, policy.Reading(0.30), threshold=0.05) == policy.WORSENED
    # better is never a reason
    assert policy.realert_reason(alerted, policy.Reading(0.051), threshold=0.05) is None


def test_realert_for_a_lower_is_worse_metric():
    alerted = policy.Reading(0.965)
    kwargs = {"threshold": 0.97, "lower_is_worse": True}
    assert policy.realert_reason(alerted, policy.Reading(0.96), **kwargs) is None
    assert policy.realert_reason(alerted, policy.Reading(0.90), **kwargs) == policy.WORSENED


def test_realert_when_a_spike_turns_into_a_drop():
    """The issue's case: a spike that turns into a 90% drop sent no new alert."""
    spike, drop = policy.Reading(4.2, sign=1), policy.Reading(4.3, sign=-1)
    assert policy.realert_reason(spike, drop, threshold=4) == policy.DIRECTION_CHANGED
    assert policy.realert_reason(spike, policy.Reading(4.3, sign=1), threshold=4) is None


def test_hysteresis_doubles_with_each_reopen():
    assert not policy.should_resolve(policy.RESOLVE_AFTER_PASSES - 1)
    assert policy.should_resolve(policy.RESOLVE_AFTER_PASSES)
    assert [policy.passes_needed(3, reopens) for reopens in (0, 1, 2, 9)] == [3, 6, 12, 48]


def test_change_summary_says_what_how_much_and_since_when():
    since = dt.datetime(2026, 1, 5, 12, 15, tzinfo=dt.UTC)
    line = policy.change_summary(
        event="worsened", before=0.06, after=0.3, threshold=0.05, since=since
    )
    assert "0.06 -> 0.3" in line and "+0.24" in line and "x5" in line
    assert "threshold 0.05" in line and "since 2026-01-05 12:15 UTC" in line


def test_vanished_scores_a_country_gone_and_ignores_small_or_present_ones():
    """GB (12% of the baseline) sends nothing: 0.12 of the traffic vanished. A tiny country
    with no events is not judged (expected under min_expected), one that is merely low is
    not gone."""
    baseline = {"US": 3500, "GB": 1200, "DE": 900, "MT": 20, "FR": 4380}
    current = {"US": 350, "DE": 40, "FR": 450}
    result = checks.drift_evaluate(
        current, baseline, threshold=0.02, method="vanished", min_expected=50
    )
    assert result.outcome == FAIL and result.metric == pytest.approx(0.12)
    assert result.details["vanished"] == ["GB"]
    clean = dict(current, GB=100)
    assert checks.vanished_evaluate(clean, baseline, threshold=0.02).outcome == PASS
    few = checks.vanished_evaluate({"US": 30}, baseline, threshold=0.02, min_expected=50)
    assert few.outcome == SKIPPED
