"""Delivering incident alerts to a webhook (JSON POST). Called by a Celery task, which retries
transient failures (network errors, timeouts, 429 and 5xx) with backoff; other 4xx answers are
logged and dropped, since sending the same body again cannot succeed."""

from __future__ import annotations

import requests
import structlog
from django.conf import settings

from quality.models import QualityIncident
from quality.services.incidents import incident_alert_payload

logger = structlog.get_logger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5


class TransientWebhookError(Exception):
    """The receiver may accept the same alert later."""


def alert_webhook_url(incident: QualityIncident) -> str:
    check = incident.quality_check
    if check is not None and check.webhook_url:
        return check.webhook_url
    return settings.QUALITY_ALERT_WEBHOOK_URL


def incident_alert_deliver(incident_id: int, event: str) -> str:
    """POST the alert; returns what happened ("sent", "no_webhook", "gone", "refused")."""
    incident = (
        QualityIncident.objects.select_related("quality_check").filter(pk=incident_id).first()
    )
    if incident is None:
        return "gone"
    payload = incident_alert_payload(incident, event)
    logger.info(
        "quality.alert", alert=event, delivery_id=payload["delivery_id"], **payload["incident"]
    )
    url = alert_webhook_url(incident)
    if not url:
        return "no_webhook"
    try:
        response = requests.post(
            url,
            json=payload,
            timeout=WEBHOOK_TIMEOUT_SECONDS,
            headers={"User-Agent": "dataops-quality-alerts/1"},
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientWebhookError(str(exc)) from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientWebhookError(f"webhook answered {response.status_code}")
    if response.status_code >= 400:
        logger.error("quality.alert_refused", incident_id=incident_id, status=response.status_code)
        return "refused"
    return "sent"
