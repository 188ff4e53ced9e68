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

from quality.models import QualityIncident
from quality.services.outbox import alert_outbox_add

logger = structlog.get_logger(__name__)

UNRESOLVED = (QualityIncident.Status.OPEN, QualityIncident.Status.ACKNOWLEDGED)
OPENED, RESOLVED = "opened", "resolved"


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


def _unresolved(source_key: str) -> QualityIncident | None:
    return (
        QualityIncident.objects.select_for_update()
        .filter(source_key=source_key, status__in=UNRESOLVED)
        .first()
    )


def _seen_again(
    incident: QualityIncident, *, now: dt.datetime, metric: float | None, message: str
) -> QualityIncident:
    QualityIncident.objects.filter(pk=incident.pk).update(
        occurrences=F("occurrences") + 1,
        last_seen_at=now,
        last_metric_value=metric,
        last_message=message[:2000],
    )
    incident.refresh_from_db()
    return incident


def incident_record_failure(
    source: IncidentSource,
    *,
    metric: float | None,
    threshold: float | None,
    message: str,
    now: dt.datetime | None = None,
) -> tuple[QualityIncident, bool]:
    """Open an incident for a failing source, or count another occurrence on the open one.
    Returns (incident, opened)."""
    now = now or timezone.now()
    with transaction.atomic():
        incident = _unresolved(source.key)
        if incident is not None:
            return _seen_again(incident, now=now, metric=metric, message=message), False
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
            return _seen_again(incident, now=now, metric=metric, message=message), False
        logger.warning(
            "quality.incident_opened",
            incident_id=incident.pk,
            source=source.key,
            title=incident.title,
            severity=incident.severity,
            metric=metric,
            threshold=threshold,
        )
        incident_alert_enqueue(incident, OPENED)
    return incident, True


def incident_resolve_auto(
    source_key: str, *, message: str, now: dt.datetime | None = None
) -> QualityIncident | None:
    """Resolve the source's unresolved incident because its check passed again (recorded)."""
    now = now or timezone.now()
    with transaction.atomic():
        incident = _unresolved(source_key)
        if incident is None:
            return None
        incident.status = QualityIncident.Status.RESOLVED
        incident.resolved_at = now
        incident.auto_resolved = True
        note = f"[{now:%Y-%m-%d %H:%M} UTC] Auto-resolved: {message}"
        incident.notes = f"{incident.notes}\n{note}".strip()
        incident.save(update_fields=["status", "resolved_at", "auto_resolved", "notes"])
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
