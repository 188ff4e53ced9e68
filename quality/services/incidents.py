"""Writes for incidents: open-or-update on failure, auto-resolve on pass, manual transitions,
and alerts (written to the alert outbox in the same transaction; ADR 0010).

Safe under concurrency: the unresolved incident of a source is locked with select_for_update,
and a partial unique constraint (one unresolved incident per source_key) turns a race between
two workers opening the same incident into an update of the winner's row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from quality.engine import incident_policy as policy
from quality.models import QualityIncident
from quality.services.outbox import alert_outbox_add

logger = structlog.get_logger(__name__)

UNRESOLVED = (QualityIncident.Status.OPEN, QualityIncident.Status.ACKNOWLEDGED)
OPENED, RESOLVED, REOPENED = "opened", "resolved", "reopened"


@dataclass(frozen=True, slots=True)
class IncidentSource:
    """What failed: a check (`check:<id>`) or a rule's failure rate (`rule:<id>`)."""

    key: str
    source_type: str
    title: str
    severity: str = "error"
    quality_check_id: int | None = None
    rule_id: int | None = None
    fields: Sequence[str] = field(default_factory=tuple)
    event_types: Sequence[str] = field(default_factory=tuple)
    # The metric fails when it is too LOW (a pass rate), not too high.
    lower_is_worse: bool = False


def _unresolved(source_key: str) -> QualityIncident | None:
    return (
        QualityIncident.objects.select_for_update()
        .filter(source_key=source_key, status__in=UNRESOLVED)
        .first()
    )


def _seen_again(
    incident: QualityIncident,
    source: IncidentSource,
    *,
    now: dt.datetime,
    reading: policy.Reading,
    message: str,
) -> QualityIncident:
    """Count another failing run; alert again only when the metric changed direction or got
    materially worse than at the last alert (incident_policy.realert_reason)."""
    QualityIncident.objects.filter(pk=incident.pk).update(
        occurrences=F("occurrences") + 1,
        last_seen_at=now,
        last_metric_value=reading.value,
        last_message=message[:2000],
        consecutive_passes=0,
    )
    incident.refresh_from_db()
    alerted = policy.Reading(incident.alert_metric_value, incident.alert_metric_sign)
    reason = policy.realert_reason(
        alerted, reading, threshold=incident.threshold, lower_is_worse=source.lower_is_worse
    )
    if reason is not None:
        _alert(incident, reason, reading=reading, now=now)
    return incident


def _alert(
    incident: QualityIncident, event: str, *, reading: policy.Reading, now: dt.datetime
) -> None:
    """Remember what this alert said (the next one reports the change from it), then send."""
    incident.alert_previous_value = incident.alert_metric_value
    incident.alert_metric_value = reading.value
    incident.alert_metric_sign = reading.sign
    incident.last_alert_at = now
    incident.save(
        update_fields=[
            "alert_previous_value",
            "alert_metric_value",
            "alert_metric_sign",
            "last_alert_at",
        ]
    )
    incident_alert_enqueue(incident, event)


def _reopen_recent(
    source: IncidentSource, *, now: dt.datetime, reading: policy.Reading, message: str
) -> QualityIncident | None:
    """A failure soon after an auto-resolve reopens that incident (one row, one history)
    instead of opening another, and alerts "reopened"; the next resolve needs twice the
    passes (incident_policy.passes_needed), so a flapping metric cannot storm."""
    incident = (
        QualityIncident.objects.select_for_update()
        .filter(
            source_key=source.key,
            status=QualityIncident.Status.RESOLVED,
            auto_resolved=True,
            resolved_at__gte=now - policy.REOPEN_WITHIN,
        )
        .order_by("-resolved_at")
        .first()
    )
    if incident is None:
        return None
    incident.status = QualityIncident.Status.OPEN
    incident.resolved_at = None
    incident.auto_resolved = False
    incident.occurrences += 1
    incident.reopen_count += 1
    incident.consecutive_passes = 0
    incident.last_seen_at = now
    incident.last_metric_value = reading.value
    incident.last_message = message[:2000]
    incident.notes = f"{incident.notes}\n[{now:%Y-%m-%d %H:%M} UTC] Reopened: {message}".strip()
    incident.save(
        update_fields=[
            "status",
            "resolved_at",
            "auto_resolved",
            "occurrences",
            "reopen_count",
            "consecutive_passes",
            "last_seen_at",
            "last_metric_value",
            "last_message",
            "notes",
        ]
    )
    _alert(incident, REOPENED, reading=reading, now=now)
    return incident


def incident_record_failure(
    source: IncidentSource,
    *,
    metric: float | None,
    threshold: float | None,
    message: str,
    now: dt.datetime | None = None,
    sign: int = 0,
) -> tuple[QualityIncident, bool]:
    """Open an incident for a failing source, or count another occurrence on the open one
    (re-alerting when much worse), or reopen one that auto-resolved moments ago.
    Returns (incident, opened). `sign` is the side a two-sided metric failed on."""
    now = now or timezone.now()
    reading = policy.Reading(metric, sign)
    with transaction.atomic():
        incident = _unresolved(source.key)
        if incident is not None:
            return _seen_again(incident, source, now=now, reading=reading, message=message), False
        reopened = _reopen_recent(source, now=now, reading=reading, message=message)
        if reopened is not None:
            return reopened, False
        try:
            with transaction.atomic():
                incident = QualityIncident.objects.create(
                    source_type=source.source_type,
                    source_key=source.key,
                    quality_check_id=source.quality_check_id,
                    rule_id=source.rule_id,
                    title=source.title[:255],
                    severity=source.severity,
                    opened_at=now,
                    last_seen_at=now,
                    last_metric_value=metric,
                    threshold=threshold,
                    last_message=message[:2000],
                    fields=list(source.fields),
                    event_types=list(source.event_types),
                )
        except IntegrityError:
            # Another worker opened it between our read and our insert: theirs is the one.
            incident = _unresolved(source.key)
            if incident is None:
                raise
            return _seen_again(incident, source, now=now, reading=reading, message=message), False
        logger.warning(
            "quality.incident_opened",
            incident_id=incident.pk,
            source=source.key,
            title=incident.title,
            severity=incident.severity,
            metric=metric,
            threshold=threshold,
        )
        _alert(incident, OPENED, reading=reading, now=now)
    return incident, True


def incident_resolve_auto(
    source_key: str,
    *,
    message: str,
    now: dt.datetime | None = None,
    passes_needed: int = 1,
) -> QualityIncident | None:
    """Count a pass on the source's unresolved incident; resolve it (recorded, alerted) once
    `passes_needed` runs in a row passed (hysteresis: a metric hovering at its threshold does
    not resolve and reopen every other run; twice as many per earlier reopen). Returns the
    incident if it resolved."""
    now = now or timezone.now()
    with transaction.atomic():
        incident = _unresolved(source_key)
        if incident is None:
            return None
        incident.consecutive_passes += 1
        needed = policy.passes_needed(passes_needed, incident.reopen_count)
        if not policy.should_resolve(incident.consecutive_passes, needed=needed):
            incident.save(update_fields=["consecutive_passes"])
            return None
        incident.status = QualityIncident.Status.RESOLVED
        incident.resolved_at = now
        incident.auto_resolved = True
        note = f"[{now:%Y-%m-%d %H:%M} UTC] Auto-resolved: {message}"
        incident.notes = f"{incident.notes}\n{note}".strip()
        incident.save(
            update_fields=[
                "status",
                "resolved_at",
                "auto_resolved",
                "notes",
                "consecutive_passes",
            ]
        )
        _log_resolved(incident, auto=True)
        incident_alert_enqueue(incident, RESOLVED)
    return incident


def _log_resolved(incident: QualityIncident, *, auto: bool) -> None:
    logger.info(
        "quality.incident_resolved",
        incident_id=incident.pk,
        source=incident.source_key,
        title=incident.title,
        auto=auto,
        occurrences=incident.occurrences,
    )


def incidents_acknowledge(incident_ids: Sequence[int], *, user: Any) -> int:
    """open -> acknowledged, taking ownership when nobody owns it yet."""
    now = timezone.now()
    count = 0
    with transaction.atomic():
        rows = QualityIncident.objects.select_for_update().filter(
            pk__in=incident_ids, status=QualityIncident.Status.OPEN
        )
        for incident in rows:
            incident.status = QualityIncident.Status.ACKNOWLEDGED
            incident.acknowledged_at = now
            if incident.owner_id is None and user is not None and user.is_authenticated:
                incident.owner = user
            incident.save(update_fields=["status", "acknowledged_at", "owner"])
            count += 1
    return count


def incidents_resolve(incident_ids: Sequence[int], *, user: Any, note: str = "") -> int:
    """Resolve by hand (open or acknowledged -> resolved); sends the resolve alert."""
    now = timezone.now()
    count = 0
    with transaction.atomic():
        rows = QualityIncident.objects.select_for_update().filter(
            pk__in=incident_ids, status__in=UNRESOLVED
        )
        for incident in rows:
            _apply_resolution(incident, user=user, now=now, note=note)
            count += 1
    return count


def _apply_resolution(incident: QualityIncident, *, user: Any, now: dt.datetime, note: str):
    who = getattr(user, "username", "") or "someone"
    incident.status = QualityIncident.Status.RESOLVED
    incident.resolved_at = now
    incident.auto_resolved = False
    line = f"[{now:%Y-%m-%d %H:%M} UTC] Resolved by {who}" + (f": {note}" if note else "")
    incident.notes = f"{incident.notes}\n{line}".strip()
    incident.save(update_fields=["status", "resolved_at", "auto_resolved", "notes"])
    _log_resolved(incident, auto=False)
    incident_alert_enqueue(incident, RESOLVED)


def incident_update(incident: QualityIncident, *, previous_status: str, user: Any) -> None:
    """Save an admin edit (owner, notes, status) keeping the transition timestamps right."""
    now = timezone.now()
    status = incident.status
    if status == previous_status:
        incident.save(update_fields=["owner", "notes", "title", "severity"])
        return
    if previous_status == QualityIncident.Status.RESOLVED:
        # Re-opening would break the one-unresolved-per-source rule; a new failure reopens.
        incident.status = previous_status
        incident.save(update_fields=["owner", "notes", "title", "severity"])
        return
    if status == QualityIncident.Status.RESOLVED:
        incident.save(update_fields=["owner", "notes", "title", "severity"])
        with transaction.atomic():
            _apply_resolution(incident, user=user, now=now, note="")
        return
    if status == QualityIncident.Status.ACKNOWLEDGED:
        incident.acknowledged_at = now
    incident.save(
        update_fields=["owner", "notes", "title", "severity", "status", "acknowledged_at"]
    )


def incident_alert_enqueue(incident: QualityIncident, event: str) -> None:
    """Record the alert in the outbox, in the caller's transaction (the incident change's):
    it is delivered after commit, or by the beat's retries, whatever the broker does."""
    alert_outbox_add(incident, event)
