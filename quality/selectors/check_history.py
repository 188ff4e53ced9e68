"""One check's history for its page: the check, its metric over time against its threshold,
its recent runs with their failing-row samples, and its incidents (open and past)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from quality.engine.checks import KIND_HELP
from quality.models import CheckRun, QualityCheck, QualityIncident

HISTORY_RUNS = 200  # points on the chart: at a 5-minute interval, about 17 hours
RECENT_RUNS = 20
RECENT_INCIDENTS = 20


def sample_links(samples: dict[str, Any]) -> list[dict[str, str]]:
    """Admin links for a run's sampled ids: the event (searched by event_id) or the
    quarantined row itself."""
    ids = (samples or {}).get("ids") or []
    if samples.get("kind") == "quarantine":
        return [
            {"label": f"#{pk}", "url": reverse("admin:events_rejectedevent_change", args=[pk])}
            for pk in ids
        ]
    changelist = reverse("admin:events_event_changelist")
    return [{"label": str(event_id), "url": f"{changelist}?q={event_id}"} for event_id in ids]


def _run_row(run: CheckRun) -> dict[str, Any]:
    samples = run.samples or {}
    return {
        "id": run.pk,
        "ran_at": run.ran_at,
        "outcome": run.outcome,
        "metric_value": run.metric_value,
        "threshold": run.threshold,
        "duration_ms": run.duration_ms,
        "message": run.message,
        "sample_kind": samples.get("kind", ""),
        "samples": sample_links(samples),
        "admin_url": reverse("admin:quality_checkrun_change", args=[run.pk]),
    }


def check_history(check_id: int) -> dict[str, Any] | None:
    """Everything the check page shows, or None when there is no such check."""
    check = QualityCheck.objects.filter(pk=check_id).first()
    if check is None:
        return None
    newest = list(check.runs.order_by("-ran_at", "-id")[:HISTORY_RUNS])
    incidents = QualityIncident.objects.filter(quality_check=check).order_by("-opened_at")
    return {
        "check": {
            "id": check.pk,
            "name": check.name,
            "description": check.description,
            "kind": check.kind,
            "kind_help": KIND_HELP.get(check.kind, ""),
            "params": check.params,
            "threshold": check.threshold,
            "fails_below": check.kind == "validation_pass_rate"
            or (check.params or {}).get("fail_when") == "below",
            "interval_minutes": check.interval_minutes,
            "severity": check.severity,
            "enabled": check.enabled,
            "last_run_at": check.last_run_at,
            "admin_url": reverse("admin:quality_qualitycheck_change", args=[check.pk]),
        },
        "series": [
            {"ran_at": run.ran_at, "metric_value": run.metric_value, "threshold": run.threshold}
            for run in reversed(newest)
        ],
        "runs": [_run_row(run) for run in newest[:RECENT_RUNS]],
        "incidents": [
            {
                "id": incident.pk,
                "title": incident.title,
                "status": incident.status,
                "severity": incident.severity,
                "opened_at": incident.opened_at,
                "resolved_at": incident.resolved_at,
                "occurrences": incident.occurrences,
                "admin_url": reverse("admin:quality_qualityincident_change", args=[incident.pk]),
            }
            for incident in incidents[:RECENT_INCIDENTS]
        ],
    }
