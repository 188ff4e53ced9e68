"""Incident alerts: what they say (the JSON body) and one POST to a webhook. Delivery, retries
and dead letters are the outbox's (`quality.services.outbox`, ADR 0010). A POST fails either
transiently (network errors, timeouts, 429 and 5xx: the receiver may accept the same body
later) or for good (other 4xx: sending the same body again cannot succeed)."""

from __future__ import annotations

from typing import Any

import requests
from django.urls import NoReverseMatch, reverse

from quality.engine.incident_policy import change_summary
from quality.models import QualityIncident

WEBHOOK_TIMEOUT_SECONDS = 5


class TransientWebhookError(Exception):
    """The receiver may accept the same alert later."""


class WebhookRefusedError(Exception):
    """The receiver refused the alert (a 4xx other than 429): resending cannot help."""


def incident_admin_path(incident_id: int) -> str:
    try:
        return reverse("admin:quality_qualityincident_change", args=[incident_id])
    except NoReverseMatch:  # admin not mounted (a worker-only URLconf)
        return ""


def check_page_path(check_id: int | None) -> str:
    """The check's page (metric over time against its threshold, runs, incidents)."""
    if check_id is None:
        return ""
    try:
        return reverse("reports:check_detail", args=[check_id])
    except NoReverseMatch:
        return ""


def incident_change(incident: QualityIncident, event: str) -> dict[str, Any]:
    """What the alert reports as changed: the metric at the previous alert -> now, and since
    when the incident has been failing."""
    before = None if event == "opened" else incident.alert_previous_value
    after = incident.alert_metric_value
    if event == "resolved":
        before, after = incident.alert_metric_value, incident.last_metric_value
    return {
        "summary": change_summary(
            event=event,
            before=before,
            after=after,
            threshold=incident.threshold,
            since=incident.opened_at,
        ),
        "from": before,
        "to": after,
        "by": (after - before) if before is not None and after is not None else None,
        "since": incident.opened_at.isoformat(),
    }


def incident_alert_payload(incident: QualityIncident, event: str) -> dict[str, Any]:
    """The alert's body as of the incident change; `delivery_id` lets receivers dedupe, since
    delivery is at least once."""
    return {
        "event": event,
        "delivery_id": f"incident-{incident.pk}-{event}-{incident.occurrences}",
        "incident": {
            "id": incident.pk,
            "title": incident.title,
            "source": incident.source_key,
            "source_type": incident.source_type,
            "severity": incident.severity,
            "status": incident.status,
            "opened_at": incident.opened_at.isoformat(),
            "last_seen_at": incident.last_seen_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
            "auto_resolved": incident.auto_resolved,
            "occurrences": incident.occurrences,
            "metric_value": incident.last_metric_value,
            "threshold": incident.threshold,
            "message": incident.last_message,
            "fields": incident.fields,
            "event_types": incident.event_types,
            "admin_path": incident_admin_path(incident.pk),
            "check_path": check_page_path(incident.quality_check_id),
        },
        "change": incident_change(incident, event),
    }


def alert_post(url: str, payload: dict[str, Any]) -> None:
    """POST one alert; raises TransientWebhookError or WebhookRefusedError."""
    try:
        response = requests.post(
            url,
            json=payload,
            timeout=WEBHOOK_TIMEOUT_SECONDS,
            headers={"User-Agent": "dataops-quality-alerts/1"},
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientWebhookError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientWebhookError(f"webhook answered {response.status_code}")
    if response.status_code >= 400:
        raise WebhookRefusedError(f"webhook answered {response.status_code}")
