"""The README's freshness KPI, measured: the share of accepted events received within
FRESH_WITHIN (5 minutes) of their own timestamp, per period of receipt time. Read like the pass
rate (ADR 0005): `IntakeHour.fresh` for whole folded hours, raw rows for the partial hours at
the edges and for the tail after the intake watermarks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.db.models.expressions import RawSQL

from events.facade import events_all
from quality.models import IntakeHour
from quality.selectors.intake import (
    FRESH_TARGET,
    FRESH_WITHIN,
    fresh_sql,
    in_span,
    intake_marks,
    intake_snapshot,
    intake_split,
)


def _raw_counts(events: QuerySet) -> tuple[int, int]:
    """(accepted, fresh) of raw rows; one query over the received_at index range."""
    fresh = RawSQL(fresh_sql(), [])  # noqa: S611 (constant SQL, no input)
    row = events.aggregate(accepted=Count("id"), fresh=Sum(fresh))
    return row["accepted"], row["fresh"] or 0


def data_freshness(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Accepted events received in [start, end), how many within 5 minutes of their timestamp,
    the share (None with no events) and whether it meets the 95% target."""
    accepted = fresh = 0
    split = intake_split(start, end)
    with intake_snapshot():
        for span in split.edges:
            a, f = _raw_counts(in_span(events_all(), span))
            accepted, fresh = accepted + a, fresh + f
        if split.hours is not None:
            marks = intake_marks()
            rolled = in_span(IntakeHour.objects.all(), split.hours, "bucket").aggregate(
                a=Sum("accepted"), f=Sum("fresh")
            )
            accepted, fresh = accepted + (rolled["a"] or 0), fresh + (rolled["f"] or 0)
            for events in marks.events_after():
                a, f = _raw_counts(in_span(events, split.hours))
                accepted, fresh = accepted + a, fresh + f
    share = fresh / accepted if accepted else None
    return {
        "accepted": accepted,
        "fresh": fresh,
        "late": accepted - fresh,
        "share": share,
        "target": FRESH_TARGET,
        "within_minutes": int(FRESH_WITHIN.total_seconds() // 60),
        "meets_target": None if share is None else share >= FRESH_TARGET,
    }
