"""Dataset checks on stored events: every kind against real rows, CheckRun records, the
incident lifecycle (open, update, acknowledge, auto-resolve), no duplicate incidents under
concurrency, the rule-rate watch, alert webhooks, and the run_quality_checks command."""

from __future__ import annotations

import datetime as dt
import io
import threading
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from quality.engine.incident_policy import RESOLVE_AFTER_PASSES
from quality.models import AlertOutbox, CheckRun, QualityIncident, RuleCounter
from quality.services import checks
from tests.factories import (
    EventFactory,
    QualityCheckFactory,
    QualityRuleFactory,
    RejectedEventFactory,
)
from tests.webhook_receiver import webhook_receiver

NOW = timezone.now()


def ago(**delta) -> dt.datetime:
    return NOW - dt.timedelta(**delta)


def run(check) -> CheckRun:
    return checks.check_run(check.pk, now=NOW)


@pytest.mark.django_db
def test_freshness_opens_an_incident_then_resolves_it_automatically():
    """Stale data opens one incident; failing again counts an occurrence; fresh data
    resolves it after RESOLVE_AFTER_PASSES passing runs in a row, recorded as automatic."""
    check = QualityCheckFactory(name="fresh", kind="freshness", threshold=15)
    EventFactory(timestamp=ago(minutes=40))
    first = run(check)
    assert (first.outcome, round(first.metric_value)) == ("fail", 40)
    assert first.duration_ms >= 0 and first.threshold == 15
    run(check)
    incident = QualityIncident.objects.get()
    assert (incident.status, incident.occurrences, incident.source_key) == (
        "open",
        2,
        f"check:{check.pk}",
    )

    EventFactory(timestamp=ago(minutes=1))
    for _ in range(RESOLVE_AFTER_PASSES - 1):
        assert run(check).outcome == "pass"
        incident.refresh_from_db()
        assert incident.status == "open"
    run(check)
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.auto_resolved and incident.resolved_at
    assert "Auto-resolved" in incident.notes

    EventFactory.reset_sequence()
    QualityIncident.objects.update(last_seen_at=NOW)
    EventFactory._meta.model.objects.all().delete()
    EventFactory(timestamp=ago(hours=2))
    run(check)
    # failing again within the hour reopens the same incident (ADR 0020), not a second one
    reopened = QualityIncident.objects.get()
    assert reopened.status == "open" and reopened.reopen_count == 1


@pytest.mark.django_db
def test_volume_anomaly_against_the_same_hour_on_previous_days():
    check = QualityCheckFactory(
        kind="volume_anomaly",
        threshold=3.5,
        params={"window_minutes": 60, "baseline_days": 4, "min_baseline_days": 3},
    )
    EventFactory(timestamp=ago(days=10))  # history starts before the baseline days
    for day in range(1, 5):
        EventFactory.create_batch(40, timestamp=ago(days=day, minutes=30))
    EventFactory.create_batch(2, timestamp=ago(minutes=30))
    result = run(check)
    assert result.outcome == "fail" and result.details["baseline"] == [40, 40, 40, 40]
    EventFactory.create_batch(38, timestamp=ago(minutes=20))
    assert run(check).outcome == "pass"


@pytest.mark.django_db
def test_volume_anomaly_is_skipped_without_history():
    """A new installation has no previous days: skipped, not a false alarm."""
    check = QualityCheckFactory(kind="volume_anomaly", threshold=3.5, params={})
    EventFactory.create_batch(3, timestamp=ago(minutes=5))
    assert run(check).outcome == "skipped"
    assert not QualityIncident.objects.exists()


@pytest.mark.django_db
def test_null_rate_of_a_field_for_some_event_types():
    check = QualityCheckFactory(
        kind="null_rate",
        threshold=0.1,
        params={"field": "category", "event_types": ["product_view"], "window_minutes": 60},
    )
    EventFactory.create_batch(
        8, event_type="product_view", category="shoes", timestamp=ago(minutes=5)
    )
    EventFactory.create_batch(2, event_type="product_view", category="", timestamp=ago(minutes=5))
    EventFactory.create_batch(20, event_type="page_view", category="", timestamp=ago(minutes=5))
    result = run(check)
    assert result.outcome == "fail" and result.metric_value == pytest.approx(0.2)
    incident = QualityIncident.objects.get()
    assert incident.fields == ["category"] and incident.event_types == ["product_view"]


@pytest.mark.django_db
def test_null_rate_of_a_numeric_field_and_all_null():
    check = QualityCheckFactory(
        kind="null_rate", threshold=0.5, params={"field": "price", "window_minutes": 60}
    )
    EventFactory.create_batch(3, price=None, timestamp=ago(minutes=5))
    assert run(check).metric_value == 1.0


@pytest.mark.django_db
def test_duplicate_rate_counts_same_action_under_different_event_ids():
    check = QualityCheckFactory(
        kind="duplicate_rate", threshold=0.05, params={"window_minutes": 60}
    )
    moment = ago(minutes=3)
    EventFactory.create_batch(
        3, session_id="s", product_id="p", event_type="product_view", timestamp=moment
    )
    EventFactory.create_batch(7, timestamp=ago(minutes=4))
    result = run(check)
    assert result.outcome == "fail" and result.metric_value == pytest.approx(0.2)


@pytest.mark.django_db
def test_distribution_drift_of_device_type():
    check = QualityCheckFactory(
        kind="distribution_drift",
        threshold=0.2,
        params={"field": "device_type", "window_minutes": 60, "baseline_days": 2, "min_events": 10},
    )
    EventFactory.create_batch(20, device_type="desktop", timestamp=ago(days=1))
    EventFactory.create_batch(20, device_type="mobile", timestamp=ago(days=1))
    EventFactory.create_batch(18, device_type="mobile", timestamp=ago(minutes=10))
    EventFactory.create_batch(2, device_type="desktop", timestamp=ago(minutes=10))
    result = run(check)
    assert result.outcome == "fail" and result.metric_value == pytest.approx(0.4)


@pytest.mark.django_db
def test_funnel_sanity_finds_purchases_without_checkout():
    check = QualityCheckFactory(kind="funnel_sanity", threshold=0.1, params={"window_minutes": 60})
    EventFactory(event_type="checkout_start", session_id="good", timestamp=ago(minutes=9))
    EventFactory(purchase=True, session_id="good", timestamp=ago(minutes=8))
    EventFactory(purchase=True, session_id="orphan", timestamp=ago(minutes=8))
    result = run(check)
    assert result.outcome == "fail" and result.metric_value == pytest.approx(0.5)


@pytest.mark.django_db
def test_funnel_sanity_with_no_purchases_is_skipped():
    check = QualityCheckFactory(kind="funnel_sanity", threshold=0.1, params={})
    assert run(check).outcome == "skipped"


@pytest.mark.django_db
def test_validation_pass_rate_below_target():
    check = QualityCheckFactory(
        kind="validation_pass_rate", threshold=0.995, params={"window_minutes": 60}
    )
    EventFactory.create_batch(99, received_at=ago(minutes=5))
    RejectedEventFactory(received_at=ago(minutes=5))
    result = run(check)
    assert result.outcome == "fail" and result.metric_value == pytest.approx(0.99)


@pytest.mark.django_db
def test_due_checks_are_claimed_once_per_interval():
    """Two schedulers firing at the same moment run a due check once."""
    check = QualityCheckFactory(kind="freshness", threshold=15, interval_minutes=5)
    assert [r.quality_check_id for r in checks.checks_run_due(NOW)] == [check.pk]
    assert checks.checks_run_due(NOW) == []
    assert checks.checks_run_due(NOW + dt.timedelta(minutes=3)) == []
    assert len(checks.checks_run_due(NOW + dt.timedelta(minutes=5))) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_same_failing_check_open_one_incident(require_postgres):
    check = QualityCheckFactory(kind="freshness", threshold=15)
    EventFactory(timestamp=ago(hours=1))
    barrier, errors = threading.Barrier(4), []

    def worker() -> None:
        try:
            barrier.wait()
            checks.check_run(check.pk)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    incident = QualityIncident.objects.get()
    assert incident.occurrences == 4
    assert CheckRun.objects.count() == 4


@pytest.mark.django_db
def test_rule_failure_rate_above_threshold_opens_and_then_resolves_an_incident():
    rule = QualityRuleFactory(name="price-cap", field="price", alert_rate_threshold=0.05)
    hour = NOW.replace(minute=0, second=0, microsecond=0)
    counter = RuleCounter.objects.create(
        rule_key=f"rule:{rule.pk}",
        rule_id=rule.pk,
        name=rule.name,
        bucket=hour,
        evaluated=100,
        rejected=12,
    )
    checks.rule_rates_evaluate(NOW)
    incident = QualityIncident.objects.get(source_key=f"rule:{rule.pk}")
    assert incident.source_type == "rule" and incident.last_metric_value == pytest.approx(0.12)
    assert incident.fields == ["price"]
    counter.evaluated = 1000
    counter.save()
    for _ in range(RESOLVE_AFTER_PASSES):
        checks.rule_rates_evaluate(NOW)
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.auto_resolved


@pytest.mark.django_db
def test_incident_acknowledge_and_resolve_in_admin(client):
    user = get_user_model().objects.create_superuser("owner", "o@example.com", "pw-owner-1")
    client.force_login(user)
    check = QualityCheckFactory(kind="freshness", threshold=15)
    run(check)  # no events at all: fails
    incident = QualityIncident.objects.get()
    changelist = reverse("admin:quality_qualityincident_changelist")
    client.post(changelist, {"action": "incidents_acknowledge", "_selected_action": [incident.pk]})
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.owner == user and incident.acknowledged_at
    change = reverse("admin:quality_qualityincident_change", args=[incident.pk])
    response = client.post(
        change,
        {
            "title": incident.title,
            "status": "resolved",
            "owner": user.pk,
            "notes": "Tracker fixed",
            "severity": "error",
        },
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == "resolved" and not incident.auto_resolved
    assert "Tracker fixed" in incident.notes and "Resolved by owner" in incident.notes


@pytest.mark.django_db
def test_alerts_reach_the_webhook_on_open_and_resolve(settings, django_capture_on_commit_callbacks):
    """JSON POSTs to the configured webhook, sent after commit by the alert task."""
    check = QualityCheckFactory(name="fresh", kind="freshness", threshold=15)
    with webhook_receiver() as receiver:
        settings.QUALITY_ALERT_WEBHOOK_URL = receiver.url
        with django_capture_on_commit_callbacks(execute=True):
            run(check)
        with django_capture_on_commit_callbacks(execute=True):
            run(check)  # still failing: no second alert
        EventFactory(timestamp=ago(minutes=1))
        for _ in range(RESOLVE_AFTER_PASSES):
            with django_capture_on_commit_callbacks(execute=True):
                run(check)
        received = receiver.wait_for(2)
    assert [body["event"] for body in received] == ["opened", "resolved"]
    assert received[0]["incident"]["source"] == f"check:{check.pk}"
    assert received[1]["incident"]["auto_resolved"] is True


@pytest.mark.django_db
def test_without_a_broker_a_failing_webhook_gets_one_attempt(
    settings, django_capture_on_commit_callbacks
):
    """Eager mode (the demo): the delivery after commit makes one attempt, so the check run
    never sits through back-to-back retries; the alert stays pending in the outbox for the
    beat's flush (tests/integration/test_alert_outbox.py), and the incident stands."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    check = QualityCheckFactory(kind="freshness", threshold=15)
    with webhook_receiver(statuses=[503, 503, 503]) as receiver:
        check.webhook_url = receiver.url
        check.save()
        with django_capture_on_commit_callbacks(execute=True):
            run(check)
    assert receiver.attempts == 1 and receiver.received == []
    assert QualityIncident.objects.filter(status="open").count() == 1
    assert AlertOutbox.objects.get().status == "pending"


@pytest.mark.django_db
def test_run_quality_checks_prints_a_table():
    QualityCheckFactory(name="fresh", kind="freshness", threshold=15)
    QualityCheckFactory(name="dupes", kind="duplicate_rate", threshold=0.1)
    # The command runs at the wall clock's now, not the module's NOW (a slow suite drifts apart).
    EventFactory(timestamp=timezone.now() - dt.timedelta(minutes=1))
    out = io.StringIO()
    call_command("run_quality_checks", "--check", "fresh", stdout=out)
    text = out.getvalue()
    assert text.splitlines()[0].split()[:4] == ["check", "kind", "outcome", "metric"]
    assert "fresh" in text and "PASS" in text and "dupes" not in text
    with pytest.raises(CommandError, match="Unknown check"):
        call_command("run_quality_checks", "--check", f"nope-{uuid.uuid4().hex[:4]}")
