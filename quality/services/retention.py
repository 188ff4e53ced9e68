"""Removing the quality app's old rows in bounded batches (retention, ADR 0007).

Each call deletes at most `limit` rows, oldest first, in its own short statement, so the caller
(`governance.services.retention`) loops without holding locks for long. Intake minutes
(`EventMinute`) are themselves a rollup for the Live page (the last 30 minutes): old ones go
without touching anything else; the hourly intake rollups are kept.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Model, QuerySet

from quality.models import CheckRun, EventMinute, QualityIncident


def _delete_oldest(queryset: QuerySet, order: str, limit: int) -> int:
    model: type[Model] = queryset.model
    pks = list(queryset.order_by(order, "pk").values_list("pk", flat=True)[:limit])
    if not pks:
        return 0
    deleted, _ = model.objects.filter(pk__in=pks).delete()
    return deleted


def check_runs_delete_before(before: dt.datetime, *, limit: int) -> int:
    """Delete up to `limit` check runs that ran before `before`."""
    return _delete_oldest(CheckRun.objects.filter(ran_at__lt=before), "ran_at", limit)


def event_minutes_delete_before(before: dt.datetime, *, limit: int) -> int:
    """Delete up to `limit` per-minute intake rows of minutes before `before`."""
    return _delete_oldest(EventMinute.objects.filter(bucket__lt=before), "bucket", limit)


def incidents_resolved_delete_before(before: dt.datetime, *, limit: int) -> int:
    """Delete up to `limit` incidents resolved before `before` (open ones always stay)."""
    resolved = QualityIncident.objects.filter(
        status=QualityIncident.Status.RESOLVED, resolved_at__lt=before
    )
    return _delete_oldest(resolved, "resolved_at", limit)
