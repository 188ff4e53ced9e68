"""Incidents that speak when it matters (issue 12 §3, ADR 0020), through the services on the
real database: a materially worse metric or a change of direction alerts again, a metric
hovering at its threshold stays one quiet incident, a flap reopens the same incident, and the
alert says what changed, by how much, since when, with the check page's link."""

from __future__ import annotations

import datetime as dt

import pytest

from quality.engine.incident_policy import RESOLVE_AFTER_PASSES
from quality.models import AlertOutbox, QualityIncident
from quality.services.checks import check_source
from quality.services.incidents import incident_record_failure, incident_resolve_auto
from tests.factories import QualityCheckFactory

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
pytestmark = pytest.mark.django_db


def _at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def source():
    check = QualityCheckFactory(
        name="category-null-hour",
        kind="null_rate",
        params={"field": "category", "event_types": ["product_view"], "window_minutes": 60},
        threshold=0.05,
    )
    return check_source(check)


def _fail(source, minutes: int, metric: float, sign: int = 0) -> QualityIncident:
    incident, _ = incident_record_failure(
        source, metric=metric, threshold=0.05, message=f"metric {metric}", now=_at(minutes),
        sign=sign,
    )  # fmt: skip
    return incident


def _pass(source, minutes: int) -> None:
    incident_resolve_auto(
        source.key, message="ok", now=_at(minutes), passes_needed=RESOLVE_AFTER_PASSES
    )


def _alerts() -> list[str]:
    return list(AlertOutbox.objects.order_by("pk").values_list("event", flat=True))


def test_a_materially_worse_metric_alerts_again_saying_what_changed(source):
    _fail(source, 0, 0.06)
    _fail(source, 15, 0.065)  # a little worse: counted, not alerted
    incident = _fail(source, 30, 0.30)
    assert _alerts() == ["opened", "worsened"]
    payload = AlertOutbox.objects.get(event="worsened").payload
    change = payload["change"]
    assert (change["from"], change["to"]) == (0.06, 0.30)
    assert change["by"] == pytest.approx(0.24)
    assert change["since"] == T0.isoformat()
    assert "0.06 -> 0.3" in change["summary"] and "since 2026-03-02 12:00 UTC" in change["summary"]
    assert payload["incident"]["check_path"] == f"/quality/checks/{incident.quality_check_id}/"
    _fail(source, 45, 0.35)  # not twice as far past the threshold as at the last alert
    assert _alerts() == ["opened", "worsened"]


def test_a_spike_that_turns_into_a_drop_alerts_again(source):
    _fail(source, 0, 4.2, sign=1)
    _fail(source, 15, 4.4, sign=1)
    _fail(source, 30, 4.3, sign=-1)
    assert _alerts() == ["opened", "reversed"]


def test_a_metric_hovering_at_its_threshold_stays_one_quiet_incident(source):
    """Fail, pass, fail, pass, pass, fail...: never RESOLVE_AFTER_PASSES passes in a row."""
    minute = 0
    for outcome in "FPFPPFPFPPF":
        if outcome == "F":
            _fail(source, minute, 0.051)
        else:
            _pass(source, minute)
        minute += 15
    assert QualityIncident.objects.count() == 1
    assert QualityIncident.objects.get().status == "open"
    assert _alerts() == ["opened"]


def test_resolve_after_n_passes_then_a_flap_reopens_the_same_incident(source):
    _fail(source, 0, 0.08)
    for step in range(1, RESOLVE_AFTER_PASSES + 1):
        _pass(source, 15 * step)
    incident = QualityIncident.objects.get()
    assert incident.status == "resolved" and incident.auto_resolved
    reopened = _fail(source, 75, 0.08)
    assert reopened.pk == incident.pk and reopened.status == "open"
    assert reopened.reopen_count == 1 and "Reopened" in reopened.notes
    assert _alerts() == ["opened", "resolved", "reopened"]
    # after a reopen it takes twice the passes to resolve again
    for step in range(1, 2 * RESOLVE_AFTER_PASSES):
        _pass(source, 75 + 15 * step)
    assert QualityIncident.objects.get().status == "open"
    _pass(source, 75 + 15 * 2 * RESOLVE_AFTER_PASSES)
    assert QualityIncident.objects.get().status == "resolved"
    assert QualityIncident.objects.count() == 1


def test_a_failure_long_after_a_resolve_opens_a_new_incident(source):
    _fail(source, 0, 0.08)
    for step in range(1, RESOLVE_AFTER_PASSES + 1):
        _pass(source, 15 * step)
    _fail(source, 24 * 60, 0.08)
    assert QualityIncident.objects.count() == 2
    assert _alerts() == ["opened", "resolved", "opened"]
