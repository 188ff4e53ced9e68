"""Alert channels through the outbox (ADR 0010): the generic webhook, a Slack-compatible
incoming webhook (`{"text", "blocks"}`) and e-mail (Django's mail settings); routing per check
and per rule, defaulting to QUALITY_ALERT_CHANNELS; a retry sends only to the channels that
have not taken the alert yet. With the real webhook receiver and Django's locmem mail."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from quality.models import AlertOutbox
from quality.services import checks
from quality.services.incidents import IncidentSource, incident_record_failure
from quality.services.outbox import alert_outbox_deliver
from tests.factories import QualityCheckFactory, QualityRuleFactory
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def locmem(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.QUALITY_ALERT_LINK_BASE = "https://dataops.example.com"
    settings.QUALITY_ALERT_WEBHOOK_URL = ""
    settings.QUALITY_ALERT_CHANNELS = []
    return settings


def _stale_check_alert(**check_fields) -> AlertOutbox:
    check = QualityCheckFactory(kind="freshness", threshold=15, **check_fields)
    checks.check_run(check.pk)  # no events at all: stale, an incident opens
    return AlertOutbox.objects.get()


def test_slack_and_email_channels_of_a_check_each_get_the_alert(locmem):
    """A check routed to Slack and e-mail: the receiver gets a Slack body (text + blocks with
    what changed since when, and the check page's link), one e-mail goes to the address, the
    row records both channels."""
    with webhook_receiver() as receiver:
        alert = _stale_check_alert(
            alert_channels=[f"slack:{receiver.url}", "email:oncall@example.com"]
        )
        assert alert_outbox_deliver(alert.pk) == "delivered"
        (body,) = receiver.wait_for(1)
    assert set(body) == {"text", "blocks"}
    assert "failing (freshness)" in body["text"] and body["text"].endswith("opened")
    context = body["blocks"][-1]["elements"][0]["text"]
    check_id = alert.incident.quality_check_id
    assert f"https://dataops.example.com/quality/checks/{check_id}/" in context
    assert alert.delivery_id in context
    texts = " ".join(block.get("text", {}).get("text", "") for block in body["blocks"])
    assert "opened: no metric (no data), failing since" in texts  # a stale check: no events
    (sent,) = mail.outbox
    assert "failing since" in sent.body
    assert sent.to == ["oncall@example.com"] and "failing (freshness)" in sent.subject
    assert alert.delivery_id in sent.body
    alert.refresh_from_db()
    assert alert.status == "delivered"
    assert alert.delivered_channels == [f"slack:{receiver.url}", "email:oncall@example.com"]


def test_global_default_channels_apply_to_a_check_without_its_own(locmem):
    """No channels on the check: QUALITY_ALERT_CHANNELS decides (here: generic webhook)."""
    with webhook_receiver() as receiver:
        locmem.QUALITY_ALERT_CHANNELS = [f"webhook:{receiver.url}"]
        alert = _stale_check_alert()
        assert alert_outbox_deliver(alert.pk) == "delivered"
        (body,) = receiver.wait_for(1)
    assert body == alert.payload  # the generic JSON body, unchanged
    assert mail.outbox == []


def test_a_rule_incident_goes_to_the_rule_channels(locmem):
    """Per-rule routing: a rule's failure-rate incident is e-mailed to the rule's address."""
    rule = QualityRuleFactory(alert_channels=["email:catalog-team@example.com"])
    incident, _ = incident_record_failure(
        IncidentSource(key=f"rule:{rule.pk}", source_type="rule", title="t", rule_id=rule.pk),
        metric=0.3,
        threshold=0.05,
        message="rejects 30%",
    )
    alert = AlertOutbox.objects.get(incident=incident)
    assert alert_outbox_deliver(alert.pk) == "delivered"
    assert [m.to for m in mail.outbox] == [["catalog-team@example.com"]]
    assert "Metric: 0.3 (threshold 0.05)" in mail.outbox[0].body


def test_a_retry_only_goes_to_channels_that_have_not_taken_the_alert(locmem):
    """E-mail accepted, Slack answering 503: the retry re-sends to Slack only, never a second
    e-mail."""
    locmem.ALERT_OUTBOX_BACKOFF_BASE_SECONDS = 0
    locmem.ALERT_OUTBOX_BACKOFF_MAX_SECONDS = 0
    with webhook_receiver(statuses=[503]) as receiver:
        alert = _stale_check_alert(alert_channels=["email:a@example.com", f"slack:{receiver.url}"])
        assert alert_outbox_deliver(alert.pk) == "retry"
        AlertOutbox.objects.filter(pk=alert.pk).update(next_attempt_at=alert.created_at)
        assert alert_outbox_deliver(alert.pk) == "delivered"
        receiver.wait_for(1)
    assert receiver.attempts == 2 and len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("channels", "error"),
    [
        (["sms:+123"], "Unknown channel kind"),
        (["email:not-an-address"], "not an e-mail address"),
        (["slack:ftp://x"], r"not an http\(s\) URL"),
        ("slack:https://x", "Give a list"),
    ],
)
def test_bad_channel_specs_are_form_errors(channels, error):
    check = QualityCheckFactory.build(kind="freshness", threshold=1, alert_channels=channels)
    with pytest.raises(ValidationError, match=error):
        check.full_clean()
