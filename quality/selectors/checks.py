"""Reads for dataset checks and the rule-rate watch: the counts over stored events that the
check engine judges (`quality.engine.checks`), rule counters, and the recent check runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef, Q, Sum
from django.urls import reverse

from events.facade import (
    REJECTED_STATUS_QUARANTINED,
    events_all,
    rejected_events_all,
)
from quality.engine.checks import is_property_path
from quality.models import CheckRun, RuleCounter
from quality.selectors.buckets import bucket_start
from quality.selectors.evidence import TEXT_COLUMNS, field_expression


def events_newest_timestamp(event_types: Sequence[str] = ()) -> dt.datetime | None:
    rows = events_all()
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    return rows.aggregate(newest=Max("timestamp"))["newest"]


def events_oldest_timestamp() -> dt.datetime | None:
    return events_all().order_by("timestamp").values_list("timestamp", flat=True).first()


def event_counts_in_windows(windows: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[int]:
    """Events (by event time) in each [start, end) window, in one query."""
    if not windows:
        return []
    aggregates = {
        f"w{i}": Count("id", filter=Q(timestamp__gte=start, timestamp__lt=end))
        for i, (start, end) in enumerate(windows)
    }
    low = min(start for start, _ in windows)
    high = max(end for _, end in windows)
    result = events_all().filter(timestamp__gte=low, timestamp__lt=high).aggregate(**aggregates)
    return [result[f"w{i}"] for i in range(len(windows))]


def field_null_counts(
    field: str, event_types: Sequence[str], start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(null or empty, total) for a field (or `properties.<path>`) over events in the window."""
    rows = events_all().filter(timestamp__gte=start, timestamp__lt=end)
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    rows = rows.annotate(value=field_expression(field))
    empty = Q(value__isnull=True)
    if field in TEXT_COLUMNS or is_property_path(field):
        empty |= Q(value="")
    result = rows.aggregate(total=Count("id"), empty=Count("id", filter=empty))
    return result["empty"], result["total"]


def duplicate_counts(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(events beyond the first per (session, type, product, timestamp), total) in the window.

    Different event_ids with the same content key are the same action sent twice by a client
    that did not reuse its event_id (event_id repeats are deduped at ingestion already).
    """
    rows = events_all().filter(timestamp__gte=start, timestamp__lt=end)
    total = rows.count()
    if not total:
        return 0, 0
    distinct = rows.values("session_id", "event_type", "product_id", "timestamp").distinct()
    return total - distinct.count(), total


def category_counts(field: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Events per value of a field (or `properties.<path>`, missing counted as "None")."""
    rows = events_all().filter(timestamp__gte=start, timestamp__lt=end)
    rows = rows.annotate(value=field_expression(field))
    return {
        str(value): n for value, n in rows.values_list("value").annotate(n=Count("id")).order_by()
    }


def purchases_without_checkout(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(purchases whose session has no checkout_start, purchases) in the window."""
    checkout = events_all().filter(session_id=OuterRef("session_id"), event_type="checkout_start")
    purchases = (
        events_all()
        .filter(event_type="purchase", timestamp__gte=start, timestamp__lt=end)
        .annotate(has_checkout=Exists(checkout))
    )
    result = purchases.aggregate(
        total=Count("id"), orphans=Count("id", filter=Q(has_checkout=False))
    )
    return result["orphans"], result["total"]


def validation_counts(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(accepted, still quarantined) events received in the window."""
    accepted = events_all().filter(received_at__gte=start, received_at__lt=end).count()
    rejected = (
        rejected_events_all()
        .filter(status=REJECTED_STATUS_QUARANTINED, received_at__gte=start, received_at__lt=end)
        .count()
    )
    return accepted, rejected


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
