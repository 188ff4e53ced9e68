"""The alert outbox (ADR 0010): an incident alert is written with the incident change, is
retried with backoff while the webhook fails, reaches it once it recovers, becomes a dead
letter after the horizon (or at once when refused) and goes out again on "resend" in the
admin. With the real webhook receiver; a real worker and a broker outage:
test_alert_outbox_worker.py."""

from __future__ import annotations

import time

import pytest
from django.db import transaction
from django.utils import timezone

from quality.models import AlertOutbox, QualityIncident
from quality.services import checks
from quality.services.outbox import alert_outbox_deliver, alert_outbox_deliver_due
from quality.tasks import incident_alert_send
from tests.factories import QualityCheckFactory
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_backoff(settings):
    settings.ALERT_OUTBOX_BACKOFF_BASE_SECONDS = 0.05
    settings.ALERT_OUTBOX_BACKOFF_MAX_SECONDS = 0.4
    return settings


def _open_incident(webhook_url: str = "") -> AlertOutbox:
    check = QualityCheckFactory(kind="freshness", threshold=15, webhook_url=webhook_url)
    checks.check_run(check.pk)  # no events at all: stale
    return AlertOutbox.objects.get()


def _flush_until(predicate, seconds: float = 20.0) -> None:
    """What the beat does: deliver the due alerts, again and again."""
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        alert_outbox_deliver_due()
        time.sleep(0.05)


def test_the_alert_is_written_in_the_incident_transaction():
    """No incident change, no alert; an incident change rolled back leaves no alert."""
    check = QualityCheckFactory(kind="freshness", threshold=15)
    with pytest.raises(RuntimeError), transaction.atomic():
        checks.check_run(check.pk)
        assert AlertOutbox.objects.count() == 1
        raise RuntimeError("roll back")
    assert not QualityIncident.objects.exists() and not AlertOutbox.objects.exists()
    checks.check_run(check.pk)
    alert = AlertOutbox.objects.get()
    assert (alert.status, alert.event, alert.attempts) == ("pending", "opened", 0)
    assert alert.payload["delivery_id"] == alert.delivery_id


def test_a_failing_webhook_is_retried_with_backoff_until_it_recovers(fast_backoff):
    """500, 503, timeout-like 502 and 429, then 200: delivered once, after five attempts,
    each retry waiting longer than the one before."""
    with webhook_receiver(statuses=[500, 503, 502, 429]) as receiver:
        alert = _open_incident(receiver.url)
        for attempt in range(1, 5):
            time.sleep(max(0.0, (alert.next_attempt_at - timezone.now()).total_seconds()))
            before = timezone.now()
            assert alert_outbox_deliver(alert.pk) == "retry"
            assert alert_outbox_deliver(alert.pk) == "skipped"  # not due yet
            alert.refresh_from_db()
            wait = (alert.next_attempt_at - before).total_seconds()
            backoff = min(0.05 * 2 ** (attempt - 1), 0.4)  # 0.05, 0.1, 0.2, 0.4 s, less jitter
            assert 0.8 * backoff <= wait <= backoff + 1.0, (attempt, wait)
        _flush_until(lambda: AlertOutbox.objects.get().status == "delivered")
    alert.refresh_from_db()
    assert (alert.status, alert.attempts, alert.last_error) == (
        "delivered",
        5,
        "webhook answered 429",
    )
    assert receiver.attempts == 5 and len(receiver.received) == 1
    assert receiver.received[0]["delivery_id"] == alert.delivery_id


def test_after_the_horizon_the_alert_is_a_dead_letter_that_admin_can_resend(
    fast_backoff, admin_client
):
    """A webhook down for longer than the horizon dead-letters the alert (not dropped); the
    admin lists it, and "resend" delivers it once the webhook is back."""
    fast_backoff.ALERT_OUTBOX_HORIZON_HOURS = 1 / 3600  # one second
    with webhook_receiver(statuses=[503] * 1000) as receiver:
        alert = _open_incident(receiver.url)
        _flush_until(lambda: AlertOutbox.objects.get().status == "dead")
    alert.refresh_from_db()
    assert alert.status == "dead" and alert.attempts >= 2
    assert alert.last_error.startswith(f"gave up after {alert.attempts} attempts")

    listing = admin_client.get("/admin/quality/alertoutbox/?status__exact=dead")
    assert listing.status_code == 200 and alert.delivery_id in listing.content.decode()
    with webhook_receiver() as receiver:
        # The receiver moved: the per-check URL follows (read at delivery time).
        alert.incident.quality_check.webhook_url = receiver.url
        alert.incident.quality_check.save(update_fields=["webhook_url"])
        response = admin_client.post(
            "/admin/quality/alertoutbox/",
            {"action": "resend", "_selected_action": [alert.pk]},
            follow=True,
        )
        assert (
            response.status_code == 200 and "1 alert(s) queued again" in response.content.decode()
        )
        alert.refresh_from_db()
        assert alert.status == "pending"
        _flush_until(lambda: AlertOutbox.objects.get().status == "delivered")
    assert [body["delivery_id"] for body in receiver.received] == [alert.delivery_id]


def test_a_refused_alert_is_dead_lettered_at_once():
    """A 4xx other than 429 cannot succeed by resending the same body: one attempt."""
    with webhook_receiver(statuses=[404]) as receiver:
        alert = _open_incident(receiver.url)
        assert alert_outbox_deliver(alert.pk) == "dead"
        alert_outbox_deliver_due()
    alert.refresh_from_db()
    assert (alert.status, alert.last_error) == ("dead", "webhook answered 404")
    assert receiver.attempts == 1


def test_without_a_webhook_the_alert_is_only_logged(settings):
    settings.QUALITY_ALERT_WEBHOOK_URL = ""
    alert = _open_incident()
    assert alert_outbox_deliver(alert.pk) == "unrouted"
    assert AlertOutbox.objects.get().status == "unrouted"


def test_a_message_queued_before_the_outbox_lands_in_it_once():
    """`quality.incident_alert_send` messages still in the broker at deploy become outbox
    rows, idempotently (by delivery id)."""
    alert = _open_incident()
    assert incident_alert_send.apply(args=(alert.incident_id, "opened")).get() == "queued"
    assert AlertOutbox.objects.count() == 1
    assert incident_alert_send.apply(args=(alert.incident_id + 99, "opened")).get() == "gone"
