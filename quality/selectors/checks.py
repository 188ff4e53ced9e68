"""Reads for dataset checks and the rule-rate watch: the counts that the check engine judges
(`quality.engine.checks`; from the check rollups, `quality.selectors.check_counts`, and the
intake rollups), rule counters, and the recent check runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db.models import Max, Sum
from django.urls import reverse

from events.facade import events_all
from quality.models import CheckRun, RuleCounter
from quality.selectors.buckets import bucket_start
from quality.selectors.summary import intake_totals


def events_newest_timestamp(event_types: Sequence[str] = ()) -> dt.datetime | None:
    rows = events_all()
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    return rows.aggregate(newest=Max("timestamp"))["newest"]


def events_oldest_timestamp() -> dt.datetime | None:
    return events_all().order_by("timestamp").values_list("timestamp", flat=True).first()


def validation_counts(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(accepted, still quarantined) events received in the window (intake rollups + tail)."""
    return intake_totals(start, end)


def rule_counts_since(since: dt.datetime) -> list[dict[str, Any]]:
    """Per stored rule: events checked, rejected and warned since the start of since's hour."""
    rows = (
        RuleCounter.objects.filter(bucket__gte=bucket_start(since, "hour"), rule_id__isnull=False)
        .values("rule_id")
        .annotate(evaluated=Sum("evaluated"), rejected=Sum("rejected"), warned=Sum("warned"))
        .order_by("rule_id")
    )
    return list(rows)


def check_runs_recent(limit: int = 20) -> list[dict[str, Any]]:
    """The newest check runs, for the Data quality page."""
    runs = CheckRun.objects.select_related("quality_check").order_by("-ran_at", "-id")[:limit]
    return [
        {
            "check": run.quality_check.name,
            "check_id": run.quality_check_id,
            "kind": run.quality_check.kind,
            "outcome": run.outcome,
            "metric_value": run.metric_value,
            "threshold": run.threshold,
            "ran_at": run.ran_at,
            "duration_ms": round(run.duration_ms, 2),
            "message": run.message,
            "sample_count": len((run.samples or {}).get("ids") or []),
            "admin_url": reverse("admin:quality_checkrun_change", args=[run.pk]),
        }
        for run in runs
    ]
