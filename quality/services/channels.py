"""Alert routing and the non-webhook formats: which channels an incident's alerts go to
(the check's or rule's own list, else the global QUALITY_ALERT_CHANNELS), and one send per
channel. The outbox (ADR 0010) calls `alert_channel_send` per channel and records which
channels have the alert, so a retry never re-sends to a channel that already took it."""

from __future__ import annotations

import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from quality.engine.channels import Channel, channel_parse, email_message, slack_message
from quality.models import QualityIncident
from quality.services.alerts import TransientWebhookError, WebhookRefusedError, alert_post


def channels_default() -> list[Channel]:
    """QUALITY_ALERT_CHANNELS, or the legacy single QUALITY_ALERT_WEBHOOK_URL."""
    specs = list(settings.QUALITY_ALERT_CHANNELS)
    if not specs and settings.QUALITY_ALERT_WEBHOOK_URL:
        specs = [f"webhook:{settings.QUALITY_ALERT_WEBHOOK_URL}"]
    return [channel_parse(spec) for spec in specs]


def alert_channels_for(incident: QualityIncident | None) -> list[Channel]:
    """Where this incident's alerts go: its check's channels (or the check's webhook_url
    override), or its rule's channels, else the global default. Empty: unrouted."""
    check = incident.quality_check if incident is not None else None
    rule = incident.rule if incident is not None else None
    if check is not None and check.alert_channels:
        return [channel_parse(spec) for spec in check.alert_channels]
    if check is not None and check.webhook_url:
        return [Channel("webhook", check.webhook_url)]
    if rule is not None and rule.alert_channels:
        return [channel_parse(spec) for spec in rule.alert_channels]
    return channels_default()


def _link(payload: dict[str, Any]) -> str:
    path = payload["incident"].get("check_path") or payload["incident"].get("admin_path") or ""
    base = settings.QUALITY_ALERT_LINK_BASE.rstrip("/")
    return f"{base}{path}" if base and path else ""


def alert_channel_send(channel: Channel, payload: dict[str, Any]) -> None:
    """Send one alert to one channel; raises TransientWebhookError (retry later) or
    WebhookRefusedError (dead letter), as the generic webhook does."""
    if channel.kind == "webhook":
        alert_post(channel.target, payload)
    elif channel.kind == "slack":
        alert_post(channel.target, slack_message(payload, _link(payload)))
    else:
        subject, body = email_message(payload, _link(payload))
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [channel.target])
        except smtplib.SMTPRecipientsRefused as exc:
            raise WebhookRefusedError(f"mail refused: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:  # server down, timeout, temp failure
            raise TransientWebhookError(f"mail: {type(exc).__name__}: {exc}") from exc
