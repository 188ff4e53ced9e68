"""What is kept how long (the RETENTION_* settings) and the oldest row of each kind: the Data
quality page shows it, and `governance.services.retention` enforces it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Min

from events.facade import events_all, rejected_events_all
from quality.models import CheckRun, EventMinute, QualityIncident

# (kind, label, setting): the kinds retention removes, in the order it removes them.
RETENTION_KINDS = (
    ("events", "Raw events", "RETENTION_EVENTS_DAYS"),
    ("quarantine", "Rejected events (quarantine)", "RETENTION_QUARANTINE_DAYS"),
    ("check_runs", "Check runs", "RETENTION_CHECK_RUNS_DAYS"),
    ("event_minutes", "Intake minutes", "RETENTION_EVENT_MINUTES_DAYS"),
    ("resolved_incidents", "Resolved incidents", "RETENTION_RESOLVED_INCIDENTS_DAYS"),
)


def retention_days() -> dict[str, int | None]:
    """Days kept per kind; None keeps it forever (a setting of 0)."""
    return {kind: getattr(settings, name, 0) or None for kind, _, name in RETENTION_KINDS}


def _oldest() -> dict[str, dt.datetime | None]:
    resolved = QualityIncident.objects.filter(status=QualityIncident.Status.RESOLVED)
    return {
        "events": events_all().aggregate(v=Min("received_at"))["v"],
        "quarantine": rejected_events_all().aggregate(v=Min("received_at"))["v"],
        "check_runs": CheckRun.objects.aggregate(v=Min("ran_at"))["v"],
        "event_minutes": EventMinute.objects.aggregate(v=Min("bucket"))["v"],
        "resolved_incidents": resolved.aggregate(v=Min("resolved_at"))["v"],
    }


def retention_summary() -> list[dict[str, Any]]:
    """Per kind: label, days kept (None: forever) and the oldest row's time (None: no rows)."""
    days, oldest = retention_days(), _oldest()
    return [
        {"kind": kind, "label": label, "days": days[kind], "oldest": oldest[kind]}
        for kind, label, _ in RETENTION_KINDS
    ]
