"""Aggregates computed straight from raw events (portable ORM).

Two uses: the "raw tail" that selectors add on top of rollups (events received after the rollup
watermark), and a full computation when no rollup exists yet. Every function takes the event
queryset to aggregate, so the same code serves both.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber, TruncDay, TruncHour

from events.facade import events_all, events_with_person
from reports.filters import DashboardFilters
from reports.models.grains import FUNNEL_STEPS, PRODUCT_EVENT_TYPES

# Furthest funnel step an event proves (0 when it is not a funnel event).
STEP_OF_EVENT = Case(
    *[When(event_type=step, then=Value(index + 1)) for index, step in enumerate(FUNNEL_STEPS)],
    default=Value(0),
    output_field=IntegerField(),
)
WARNED = Q(warnings__isnull=False) & ~Q(warnings=[])


def events_in(filters: DashboardFilters, base: QuerySet | None = None) -> QuerySet:
    """Events whose event time is in the period and that match the device/country filters."""
    qs = events_all() if base is None else base
    qs = qs.filter(timestamp__gte=filters.start, timestamp__lt=filters.end)
    if filters.device:
        qs = qs.filter(device_type=filters.device)
    if filters.country:
        qs = qs.filter(country=filters.country)
    return qs


def event_bucket_rows(qs: QuerySet, bucket: str) -> list[dict[str, Any]]:
    """Per (bucket start, event type): events, revenue, warned events."""
    trunc = TruncHour if bucket == "hour" else TruncDay
    rows = (
        qs.annotate(bucket=trunc("timestamp", tzinfo=dt.UTC))
        .values("bucket", "event_type")
        .annotate(
            events=Count("id"),
            revenue=Sum("revenue", filter=Q(event_type="purchase")),
            warned=Count("id", filter=WARNED),
        )
        .order_by()
    )
    return [
        {**row, "revenue": row["revenue"] or Decimal(0), "bucket": row["bucket"].astimezone(dt.UTC)}
        for row in rows
    ]


def dimension_rows(qs: QuerySet, field: str) -> list[dict[str, Any]]:
    """Per value of `field` (device_type or country): events."""
    return list(qs.values(field).annotate(events=Count("id")).order_by())


def product_rows(qs: QuerySet) -> list[dict[str, Any]]:
    """Per (product, category, event type) for product events: events, revenue."""
    rows = (
        qs.filter(event_type__in=PRODUCT_EVENT_TYPES)
        .values("product_id", "category", "event_type")
        .annotate(events=Count("id"), revenue=Sum("revenue"))
        .order_by()
    )
    return [{**row, "revenue": row["revenue"] or Decimal(0)} for row in rows]


def user_ids(qs: QuerySet, field: str | None = None) -> dict[str, set[str]] | set[str]:
    """Distinct people (ADR 0015: an id linked to another counts as it), optionally per value
    of a dimension field."""
    qs = events_with_person(qs)
    if field is None:
        return set(qs.values_list("person", flat=True).distinct())
    grouped: dict[str, set[str]] = defaultdict(set)
    for key, user_id in qs.values_list(field, "person").distinct():
        grouped[key].add(user_id)
    return grouped


def session_states(session_ids: Iterable[str] | None, base: QuerySet) -> list[dict[str, Any]]:
    """Whole-session state (over all events of each session in `base`).

    A session starts at its first event (by timestamp, then id); its user, device and country are
    those of that first event. `reached_step` is the furthest funnel step seen (1..5, 0 = none).
    Two set-based queries (aggregates, then first events by a window function), no per-session
    subquery.
    """
    qs = base if session_ids is None else base.filter(session_id__in=list(session_ids))
    rows = (
        qs.values("session_id")
        .annotate(
            started_at=Min("timestamp"),
            ended_at=Max("timestamp"),
            events=Count("id"),
            pages=Count("id", filter=Q(event_type="page_view")),
            reached_step=Max(STEP_OF_EVENT),
            revenue=Sum("revenue", filter=Q(event_type="purchase")),
        )
        .order_by()
    )
    firsts = {
        row["session_id"]: row
        for row in qs.annotate(
            position=Window(
                RowNumber(), partition_by=[F("session_id")], order_by=[F("timestamp"), F("id")]
            )
        )
        .filter(position=1)
        .values("session_id", "id", "user_id", "device_type", "country")
    }
    states = []
    for row in rows:
        first = firsts[row["session_id"]]
        states.append(
            {
                **row,
                "revenue": row["revenue"] or Decimal(0),
                "first_event": first["id"],
                "user_id": first["user_id"],
                "device_type": first["device_type"],
                "country": first["country"],
            }
        )
    return states
