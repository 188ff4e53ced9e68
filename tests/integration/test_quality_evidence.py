"""Evidence from checks: custom SQL checks (read-only, timed out, errors recorded per run),
checks on `properties.<path>`, and failing-row samples kept with failed runs and shown in admin."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from events.facade import EVENTS_TABLE
from quality.engine.checks import CheckParamError, check_params_validate
from quality.models import CheckRun, QualityCheck
from quality.services import checks
from tests.factories import EventFactory, QualityCheckFactory, RejectedEventFactory

NOW = timezone.now()
COUNT_PURCHASES = f"SELECT count(*) FROM {EVENTS_TABLE} WHERE event_type = 'purchase'"  # noqa: S608


def run(check: QualityCheck) -> CheckRun:
    return checks.check_run(check.pk, now=NOW)


def custom(sql: str, threshold: float = 1, name: str = "", **params) -> QualityCheck:
    names = {"name": name} if name else {}
    return QualityCheckFactory(
        kind="custom_sql", threshold=threshold, params={"sql": sql, **params}, **names
    )


@pytest.mark.django_db
def test_custom_sql_check_passes_then_fails_against_its_threshold(require_postgres):
    """The query's number is judged like any metric: within the threshold passes; above it
    fails and opens the check's incident; fail_when=below flips the comparison."""
    EventFactory(purchase=True)
    check = custom(COUNT_PURCHASES + ";", threshold=1)
    passed = run(check)
    assert (passed.outcome, passed.metric_value) == ("pass", 1.0)
    EventFactory(purchase=True)
    failed = run(check)
    assert (failed.outcome, failed.metric_value) == ("fail", 2.0)
    assert check.runs.count() == 2
    below = custom(COUNT_PURCHASES, threshold=5, fail_when="below")
    assert run(below).outcome == "fail"


@pytest.mark.django_db
def test_custom_sql_write_is_refused_and_recorded_as_an_error_run(require_postgres):
    """A data-modifying CTE passes the SELECT guard but the read-only transaction refuses it:
    the run is an error with the database's message, nothing is written, other checks run."""
    sql = f"WITH gone AS (DELETE FROM {EVENTS_TABLE} RETURNING 1) SELECT count(*) FROM gone"  # noqa: S608
    EventFactory()
    bad = custom(sql, name="writes")
    custom(COUNT_PURCHASES, name="reads", threshold=10)
    runs = checks.checks_run(["reads", "writes"])
    outcomes = {r.quality_check.name: r for r in runs}
    assert outcomes["writes"].outcome == "error"
    assert "read-only transaction" in outcomes["writes"].message
    assert outcomes["reads"].outcome == "pass"
    assert EventFactory._meta.model.objects.count() == 1
    assert bad.runs.get().metric_value is None


@pytest.mark.django_db
def test_custom_sql_slow_query_is_cut_by_the_statement_timeout(require_postgres, settings):
    """A query slower than QUALITY_CUSTOM_SQL_TIMEOUT_MS is cancelled: an error run, and the
    connection stays usable for the next check."""
    settings.QUALITY_CUSTOM_SQL_TIMEOUT_MS = 200
    slow = run(custom("SELECT 1 FROM pg_sleep(3)"))
    assert slow.outcome == "error" and "statement timeout" in slow.message
    assert run(custom("SELECT 0")).outcome == "pass"


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("", "non-empty SELECT"),
        ("DELETE FROM events_event", "must be a SELECT"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("UPDATE events_event SET country = 'x'", "must be a SELECT"),
    ],
)
@pytest.mark.django_db
def test_admin_refuses_a_custom_sql_that_is_not_one_select(client, sql, error):
    """The admin form shows the problem as a form error on params (never a 500)."""
    user = get_user_model().objects.create_superuser("owner", "o@example.com", "pw-owner-1")
    client.force_login(user)
    response = client.post(
        reverse("admin:quality_qualitycheck_add"),
        {
            "name": "mine",
            "kind": "custom_sql",
            "params": json.dumps({"sql": sql}),
            "threshold": "1",
            "interval_minutes": "5",
            "severity": "error",
        },
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not QualityCheck.objects.exists()


@pytest.mark.django_db
def test_null_rate_on_a_property_path_counts_missing_null_and_empty():
    """properties.utm_source: a missing key, a JSON null and "" are all empty; the failed run
    keeps the ids of those events as samples."""
    start = NOW - dt.timedelta(minutes=10)
    present = [EventFactory(timestamp=start, properties={"utm_source": "ads"}) for _ in range(2)]
    empty = [
        EventFactory(timestamp=start, properties={}),
        EventFactory(timestamp=start, properties={"utm_source": None}),
        EventFactory(timestamp=start, properties={"utm_source": ""}),
    ]
    check = QualityCheckFactory(
        kind="null_rate", threshold=0.5, params={"field": "properties.utm_source"}
    )
    result = run(check)
    assert (result.outcome, result.metric_value) == ("fail", 0.6)
    assert result.samples["kind"] == "event"
    assert sorted(result.samples["ids"]) == sorted(str(e.event_id) for e in empty)
    assert present  # the two with a value are neither counted nor sampled


@pytest.mark.django_db
def test_drift_on_a_property_path():
    """distribution_drift accepts properties.<key> and compares its value shares."""
    for minutes, source in [(30, "ads")] * 60 + [(60 * 30, "mail")] * 60:
        EventFactory(timestamp=NOW - dt.timedelta(minutes=minutes), properties={"utm": source})
    check = QualityCheckFactory(
        kind="distribution_drift", threshold=0.2, params={"field": "properties.utm"}
    )
    result = run(check)
    assert (result.outcome, result.metric_value) == ("fail", 1.0)
    assert result.samples == {}  # drift has no single rows to point at


@pytest.mark.parametrize("field", ["properties", "properties.", "properties.a-b", "nope"])
def test_bad_field_paths_are_refused(field):
    with pytest.raises(CheckParamError, match=r"or properties\.<key>"):
        check_params_validate("null_rate", {"field": field})


@pytest.mark.django_db
def test_failed_runs_keep_duplicate_orphan_and_quarantine_samples(client):
    """Each failing kind stores the rows behind it (at most 20), passing runs store none, and
    the admin run page links every sample."""
    at = NOW - dt.timedelta(minutes=5)
    first = EventFactory(timestamp=at, session_id="s1", product_id="p")
    repeats = [EventFactory(timestamp=at, session_id="s1", product_id="p") for _ in range(2)]
    orphans = [EventFactory(purchase=True, timestamp=at, session_id=f"o{i}") for i in range(25)]
    quarantined = [RejectedEventFactory(received_at=at) for _ in range(3)]

    dup = run(QualityCheckFactory(kind="duplicate_rate", threshold=0.01))
    assert sorted(dup.samples["ids"]) == sorted(str(e.event_id) for e in repeats)
    assert str(first.event_id) not in dup.samples["ids"]
    funnel = run(QualityCheckFactory(kind="funnel_sanity", threshold=0.1))
    assert funnel.outcome == "fail" and len(funnel.samples["ids"]) == 20
    assert set(funnel.samples["ids"]) <= {str(e.event_id) for e in orphans}
    rate = run(QualityCheckFactory(kind="validation_pass_rate", threshold=0.999))
    assert rate.samples == {"kind": "quarantine", "ids": [q.pk for q in quarantined]}
    assert run(QualityCheckFactory(kind="duplicate_rate", threshold=0.9)).samples == {}

    user = get_user_model().objects.create_superuser("owner", "o@example.com", "pw-owner-1")
    client.force_login(user)
    page = client.get(reverse("admin:quality_checkrun_change", args=[rate.pk])).content.decode()
    for row in quarantined:
        assert reverse("admin:events_rejectedevent_change", args=[row.pk]) in page
    page = client.get(reverse("admin:quality_checkrun_change", args=[dup.pk])).content.decode()
    assert f"?q={repeats[0].event_id}" in page
