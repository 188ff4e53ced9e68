"""The alert outbox (ADR 0010): incident alerts are rows written in the transaction of the
incident change they announce, then delivered to the webhook by workers, at least once.

- After commit, one delivery task is enqueued per new alert. If the broker is down, the row
  waits: the beat's flush (`alert_outbox_deliver_due`) delivers what is pending and due.
- A delivery first claims the row with one conditional UPDATE that moves `next_attempt_at` a
  lease ahead, so two workers (the enqueued task and a flush) never POST the same alert at
  once; a worker that dies mid-delivery leaves a lease that expires, and the alert is retried.
  Receivers dedupe by `delivery_id`.
- Transient failures are retried with exponential backoff (with jitter) until `retry_until`
  (ALERT_OUTBOX_HORIZON_HOURS after the alert, or after a resend); then, or at once for a
  refusal (4xx), the row becomes a dead letter, visible in the admin, which can resend it.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Sequence

import structlog
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from quality.models import AlertOutbox, QualityIncident
from quality.services.alerts import (
    TransientWebhookError,
    WebhookRefusedError,
    incident_alert_payload,
)
from quality.services.channels import alert_channel_send, alert_channels_for

logger = structlog.get_logger(__name__)

PENDING = AlertOutbox.Status.PENDING


def _horizon() -> dt.timedelta:
    return dt.timedelta(hours=settings.ALERT_OUTBOX_HORIZON_HOURS)


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.ALERT_OUTBOX_LEASE_SECONDS)


def _backoff(attempts: int) -> dt.timedelta:
    """Exponential from ALERT_OUTBOX_BACKOFF_BASE_SECONDS, capped, with 20% jitter so that a
    receiver coming back is not hit by every waiting alert in the same second."""
    base = settings.ALERT_OUTBOX_BACKOFF_BASE_SECONDS * 2 ** min(attempts - 1, 30)
    seconds = min(base, settings.ALERT_OUTBOX_BACKOFF_MAX_SECONDS)
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.0))


def _enqueue_after_commit(outbox_id: int) -> None:
    def send() -> None:
        try:
            # By name: quality.tasks imports the services (tasks call services, not the reverse).
            current_app.signature("quality.alert_outbox_deliver", args=(outbox_id,)).delay()
        except Exception:  # broker down: the row is pending, the beat's flush delivers it
            logger.warning("quality.alert_enqueue_failed", outbox_id=outbox_id, exc_info=True)

    transaction.on_commit(send)


def alert_outbox_add(
    incident: QualityIncident, event: str, *, now: dt.datetime | None = None
) -> AlertOutbox:
    """Record an alert (and its structured log line) in the caller's transaction. Idempotent
    by delivery id: the same incident change is one alert however often it is added."""
    now = now or timezone.now()
    payload = incident_alert_payload(incident, event)
    with transaction.atomic():
        row, created = AlertOutbox.objects.get_or_create(
            delivery_id=payload["delivery_id"],
            defaults={
                "incident": incident,
                "event": event,
                "payload": payload,
                "created_at": now,
                "next_attempt_at": now,
                "retry_until": now + _horizon(),
            },
        )
    if created:
        logger.info(
            "quality.alert", alert=event, delivery_id=row.delivery_id, **payload["incident"]
        )
        _enqueue_after_commit(row.pk)
    return row


def alert_outbox_add_by_id(incident_id: int, event: str) -> str:
    """`alert_outbox_add` for an incident id (a task message): "queued", or "gone"."""
    incident = QualityIncident.objects.filter(pk=incident_id).first()
    if incident is None:
        return "gone"
    alert_outbox_add(incident, event)
    return "queued"


def _claim(outbox_id: int, now: dt.datetime) -> AlertOutbox | None:
    claimed = AlertOutbox.objects.filter(
        pk=outbox_id, status=PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + _lease(), attempts=F("attempts") + 1)
    if not claimed:
        return None
    return AlertOutbox.objects.select_related("incident__quality_check", "incident__rule").get(
        pk=outbox_id
    )


def _finish(row: AlertOutbox, status: str, error: str = "", **fields) -> None:
    """Leave pending (a delivered alert keeps the error of its last failed attempt)."""
    if error:
        fields["last_error"] = error[:500]
    AlertOutbox.objects.filter(pk=row.pk, status=PENDING).update(status=status, **fields)


def alert_outbox_deliver(outbox_id: int) -> str:
    """Deliver one alert to each of its channels (webhook, Slack, e-mail) if it is pending and
    due. Returns "delivered" (every channel has it), "retry", "dead", "unrouted" (no channel
    configured: the log line is the alert) or "skipped" (not due, or another worker holds it).
    Each channel that took the alert is recorded at once, so a retry sends only to the rest."""
    row = _claim(outbox_id, timezone.now())
    if row is None:
        return "skipped"
    channels = alert_channels_for(row.incident)
    if not channels:
        _finish(row, AlertOutbox.Status.UNROUTED)
        return "unrouted"
    done = list(row.delivered_channels or [])
    for channel in channels:
        if channel.spec in done:
            continue
        try:
            alert_channel_send(channel, row.payload)
        except TransientWebhookError as exc:
            return _retry_or_dead_letter(row, _channel_error(channel.kind, exc))
        except WebhookRefusedError as exc:
            logger.error("quality.alert_refused", outbox_id=row.pk, error=str(exc))
            _finish(row, AlertOutbox.Status.DEAD, _channel_error(channel.kind, exc))
            return "dead"
        done.append(channel.spec)
        AlertOutbox.objects.filter(pk=row.pk).update(delivered_channels=done)
    _finish(row, AlertOutbox.Status.DELIVERED, delivered_at=timezone.now())
    return "delivered"


def _channel_error(kind: str, exc: Exception) -> str:
    """The generic webhook's errors read as before; other channels name themselves."""
    return str(exc) if kind == "webhook" else f"{kind}: {exc}"


def _retry_or_dead_letter(row: AlertOutbox, error: str) -> str:
    attempts = row.attempts  # this attempt included (the claim counted it)
    next_attempt_at = timezone.now() + _backoff(attempts)
    if next_attempt_at > row.retry_until:
        logger.error(
            "quality.alert_dead_lettered", outbox_id=row.pk, attempts=attempts, error=error
        )
        _finish(row, AlertOutbox.Status.DEAD, f"gave up after {attempts} attempts: {error}")
        return "dead"
    logger.warning("quality.alert_retry", outbox_id=row.pk, attempts=attempts, error=error)
    AlertOutbox.objects.filter(pk=row.pk, status=PENDING).update(
        next_attempt_at=next_attempt_at, last_error=error[:500]
    )
    return "retry"


def alert_outbox_deliver_due(*, limit: int = 200, max_seconds: float = 10.0) -> dict[str, int]:
    """Deliver pending alerts that are due, oldest first, within a time budget (a hanging
    webhook costs its timeout per alert). Returns counts by outcome."""
    started = time.monotonic()
    due = AlertOutbox.objects.filter(status=PENDING, next_attempt_at__lte=timezone.now())
    outcomes: Counter[str] = Counter()
    for outbox_id in due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit]:
        if time.monotonic() - started > max_seconds:
            break
        outcomes[alert_outbox_deliver(outbox_id)] += 1
    return dict(outcomes)


def alert_outbox_resend(outbox_ids: Sequence[int], *, now: dt.datetime | None = None) -> int:
    """Make dead letters (or any alert not pending) pending again, with a new horizon; they
    are enqueued after commit. Returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            AlertOutbox.objects.select_for_update()
            .filter(pk__in=outbox_ids)
            .exclude(status=PENDING)
            .values_list("pk", flat=True)
        )
        AlertOutbox.objects.filter(pk__in=rows).update(
            status=PENDING,
            next_attempt_at=now,
            retry_until=now + _horizon(),
            last_error="",
        )
        for outbox_id in rows:
            _enqueue_after_commit(outbox_id)
    return len(rows)
