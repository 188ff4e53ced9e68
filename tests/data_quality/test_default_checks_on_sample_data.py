"""The default checks against generated data (issue 12 §2, ADR 0020): the demo's data passes
every default check and opens no incident, and a planted scenario (`generate_sample_data
--scenario`) is caught by the check meant for it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from quality.engine.checks import FAIL
from quality.models import QualityIncident
from quality.services.checks import checks_evaluate, checks_run, rule_rates_evaluate
from quality.services.defaults import defaults_load

END = dt.datetime(2026, 11, 26, 14, 0, tzinfo=dt.UTC)  # a Thursday afternoon
pytestmark = pytest.mark.django_db


def _generate(**options) -> None:
    call_command("generate_sample_data", end=END, quiet=True, workers=1, **options)


def test_the_demo_data_passes_every_default_check_and_opens_no_incident():
    """`make demo` (20,000 events, default rates, rules loaded first) starts clean: no check
    fails (a quiet hour may skip), and neither checks nor rule rates open an incident."""
    defaults_load()
    _generate(events=20_000)
    results = checks_evaluate(now=END)
    failing = {check.name: result.message for check, result, _ in results if result.outcome == FAIL}
    assert failing == {}
    assert {result.outcome for _, result, _ in results} <= {"pass", "skipped"}
    assert sum(result.outcome == "pass" for _, result, _ in results) >= 8
    checks_run(now=END)
    rule_rates_evaluate(END)
    assert list(QualityIncident.objects.values_list("title", flat=True)) == []


@pytest.mark.parametrize(
    ("scenario", "check_name"),
    [
        ("currency-switch", "currency-mix-drift-hour"),
        ("prices-in-cents", "price-scale-hour"),
        ("wrong-type", "validation-pass-rate-10min"),
    ],
)
def test_a_planted_scenario_fails_the_check_meant_for_it(scenario, check_name):
    defaults_load()
    _generate(events=24_000, days=1, scenario=scenario)
    results = {check.name: result for check, result, _ in checks_evaluate(now=END)}
    assert results[check_name].outcome == FAIL, results[check_name].message
