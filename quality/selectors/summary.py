"""The Data quality page's summary reads: validation outcomes per bucket of receipt time (from
the intake rollups) and the rules failing most (from the rule counters)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, F, Max, QuerySet, Sum
from django.db.models.functions import Trunc

from events.facade import REJECTED_STATUS_QUARANTINED, events_all, rejected_events_all
from quality.models import IntakeHour, RuleCounter
from quality.selectors.buckets import BUCKETS, bucket_start, bucket_steps
from quality.selectors.intake import (
    IntakeSplit,
    in_span,
    intake_marks,
    intake_snapshot,
    intake_split,
)

Outcomes = dict[dt.datetime, dict[str, int]]


def _empty_outcome() -> dict[str, int]:
    return {"accepted": 0, "rejected": 0, "warned": 0}


def _raw_outcomes_add(counts: Outcomes, events: QuerySet, rejected: QuerySet, bucket: str) -> None:
    """Add raw accepted / warned / still-quarantined counts per bucket of receipt time.

    Accepted and warned are two queries, each served by an index: all events by receipt time
    (index-only when the table is vacuumed), and the few with warnings through a partial index.
    """
    tz = dt.UTC
    for name, rows in (("accepted", events), ("warned", events.exclude(warnings=[]))):
        found = (
            rows.annotate(b=Trunc("received_at", bucket, tzinfo=tz))
            .values("b")
            .annotate(n=Count("received_at"))
            .order_by()
        )
        for row in found:
            counts.setdefault(row["b"], _empty_outcome())[name] += row["n"]
    rows = (
        rejected.filter(status=REJECTED_STATUS_QUARANTINED)
        .annotate(b=Trunc("received_at", bucket, tzinfo=tz))
        .values("b")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts.setdefault(row["b"], _empty_outcome())["rejected"] += row["n"]


def _intake_outcomes(start: dt.datetime, end: dt.datetime, bucket: str) -> Outcomes:
    """Exact outcome counts per bucket: intake rollup hours + the raw tail after its
    watermarks, and raw rows for the partial hours at the edges (or for minute buckets)."""
    counts: Outcomes = {}
    split = intake_split(start, end) if bucket != "minute" else IntakeSplit(None, [(start, end)])
    with intake_snapshot():
        for span in split.edges:
            _raw_outcomes_add(
                counts, in_span(events_all(), span), in_span(rejected_events_all(), span), bucket
            )
        if split.hours is None:
            return counts
        marks = intake_marks()
        rolled = (
            in_span(IntakeHour.objects.all(), split.hours, "bucket")
            .annotate(b=Trunc("bucket", bucket, tzinfo=dt.UTC))
            .values("b")
            .annotate(a=Sum("accepted"), w=Sum("warned"), q=Sum("quarantined"))
            .order_by()
        )
        for row in rolled:
            entry = counts.setdefault(row["b"], _empty_outcome())
            entry["accepted"] += row["a"]
            entry["warned"] += row["w"]
            entry["rejected"] += row["q"]
        no_rejected, no_events = rejected_events_all().none(), events_all().none()
        for events in marks.events_after():
            _raw_outcomes_add(counts, in_span(events, split.hours), no_rejected, bucket)
        for rejected in marks.rejected_after():
            _raw_outcomes_add(counts, no_events, in_span(rejected, split.hours), bucket)
    return counts


def intake_totals(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(accepted, still quarantined) events received in [start, end): the pass-rate check."""
    counts = _intake_outcomes(start, end, "hour").values()
    return sum(c["accepted"] for c in counts), sum(c["rejected"] for c in counts)


def validation_pass_rate_series(
    start: dt.datetime, end: dt.datetime, bucket: str = "hour"
) -> list[dict[str, Any]]:
    """Accepted / quarantined / warned events per bucket of receipt time, zero-filled.

    accepted counts stored events (replayed ones at their original receipt time, so a fix
    and replay improves history); rejected counts what is still in quarantine. pass_rate is
    None for an empty bucket. Read from the intake rollups plus the raw tail (ADR 0005).
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {sorted(BUCKETS)}")
    counts: Outcomes = {b: _empty_outcome() for b in bucket_steps(start, end, bucket)}
    for key, entry in _intake_outcomes(start, end, bucket).items():
        counts.setdefault(key, _empty_outcome())
        for name, value in entry.items():
            counts[key][name] += value
    series = []
    for key in sorted(counts):
        entry = counts[key]
        total = entry["accepted"] + entry["rejected"]
        series.append(
            {
                "bucket": key,
                **entry,
                "pass_rate": round(entry["accepted"] / total, 6) if total else None,
            }
        )
    return series


def rules_failing_top(start: dt.datetime, end: dt.datetime, limit: int = 10) -> list[dict]:
    """Rules (stored and schema-layer) by events rejected + warned in [start, end).

    Stored rules have their id; schema-layer rules have rule_id None and a name such as
    `country: required (schema)`.
    """
    rows = (
        RuleCounter.objects.filter(bucket__gte=bucket_start(start, "hour"), bucket__lt=end)
        .values("rule_key")
        .annotate(
            rule_id=Max("rule_id"),
            name=Max("name"),
            severity=Max("severity"),
            evaluated=Sum("evaluated"),
            rejected=Sum("rejected"),
            warned=Sum("warned"),
        )
        .annotate(failed=F("rejected") + F("warned"))
        .filter(failed__gt=0)
        .order_by("-failed", "name")[:limit]
    )
    return [
        {
            "rule_id": row["rule_id"],
            "name": row["name"],
            "severity": row["severity"],
            "rejected": row["rejected"],
            "warned": row["warned"],
            "evaluated": row["evaluated"],
            # Schema-layer counts are written only for batches where they failed, so a rate
            # would overstate them; stored rules count every event they checked.
            "failure_rate": round(row["failed"] / row["evaluated"], 6)
            if row["evaluated"] and row["rule_id"] is not None
            else None,
        }
        for row in rows
    ]
