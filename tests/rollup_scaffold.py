"""The scaffold of the rollup tests, written once: a fixed clock, a fold past the safety lag,
re-sending an event, and the three-way check every derived rollup table must pass (the table
equals its source table summed over device and country, and equals Python over the raw events
under the watermark)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from events.models import Event
from reports.models import EventMetricDaily, UserFirstSeen
from reports.models.grains import (
    ALL_MODELS,
    EVENT_METRIC,
    EVENT_TOTAL,
    FUNNEL_STEPS,
    GRAINS,
    SESSION_METRIC,
    SESSION_TOTAL,
)
from reports.selectors.user_bitmaps import bitmap_load
from reports.selectors.watermark import watermark_get
from reports.services.rollups import rollups_advance

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)  # `now` for rollup runs: past the safety lag of all events


def advance(now: dt.datetime = LATER, **kwargs) -> int:
    """Fold everything received before `now` minus the safety lag; how many events."""
    return rollups_advance(now=now, **kwargs).events


def event_resend(event: Event) -> None:
    """Store `event` again as a client re-sending it would (same event_id): dedupe drops it."""
    copy = Event(
        **{
            f.attname: getattr(event, f.attname)
            for f in Event._meta.concrete_fields
            if f.attname != "id"
        }
    )
    Event.objects.bulk_create([copy], ignore_conflicts=True)


def daily(day: dt.date, **filters) -> int:
    rows = EventMetricDaily.objects.filter(
        bucket=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), **filters
    )
    return sum(rows.values_list("events", flat=True))


def utc_bucket(moment: dt.datetime, grain: str) -> dt.datetime:
    """The start of the UTC hour, day or week (Monday) of `moment`."""
    hour = moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    if grain == "hour":
        return hour
    day = hour.replace(hour=0)
    return day if grain == "day" else day - dt.timedelta(days=day.weekday())


def events_under_watermark(events: Iterable[Event] | None = None) -> list[Event]:
    """The stored events the rollups hold: (txid, id) up to the watermark (ADR 0011)."""
    mark = watermark_get()
    if mark.is_start:
        return []
    events = Event.objects.all() if events is None else events
    txids = dict(Event.objects.values_list("id", "txid"))
    return [event for event in events if mark.holds(txids[event.pk], event.pk)]


def assert_rollup_exact(
    keys: Iterable[str],
    stored: Callable[[str], dict],
    summed: Callable[[str], dict],
    raw: Callable[[str], dict],
) -> None:
    """For every key (a grain or a dimension): the stored rows are not empty, and equal both
    their source summed and the raw events' reference."""
    for key in keys:
        rows = stored(key)
        assert rows, key
        assert rows == summed(key), key
        assert rows == raw(key), key


def table_state() -> dict:
    """Every rollup row without its surrogate id; emptied session-metric rows (a session moved
    to another bucket) and emptied bitmaps (a user's first event moved) count as absent. User
    bitmaps are compared as sets of user ids: keys are
    assigned in fold order, so two fold histories may number the same users differently."""
    user_ids = dict(UserFirstSeen.objects.values_list("id", "user_id"))
    state = {}
    for model in ALL_MODELS:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows = []
        for row in model.objects.values(*fields):
            if row.get("sessions", 1) == 0:
                continue
            if "users" in row:
                row["users"] = sorted(user_ids[key] for key in bitmap_load(row["users"]))
                if not row["users"]:
                    continue
            rows.append(tuple(row.values()))
        state[model.__name__] = sorted(rows)
    return state


# ---------------------------------------------------------------------------------------------
# Event totals (per bucket and type, without device and country).


def event_totals(grain: str) -> dict:
    rows = EVENT_TOTAL[grain].objects.values("bucket", "event_type", "events", "warned", "revenue")
    return {
        (row["bucket"], row["event_type"]): (row["events"], row["warned"], row["revenue"])
        for row in rows
    }


def event_metrics_summed(grain: str) -> dict:
    rows = (
        EVENT_METRIC[grain]
        .objects.values("bucket", "event_type")
        .annotate(e=Sum("events"), w=Sum("warned"), r=Sum("revenue"))
    )
    return {(row["bucket"], row["event_type"]): (row["e"], row["w"], row["r"]) for row in rows}


def raw_event_totals(grain: str) -> dict:
    """The totals computed in Python from the stored events under the watermark."""
    totals: dict[Any, list] = {}
    for event in events_under_watermark():
        cell = totals.setdefault(
            (utc_bucket(event.timestamp, grain), event.event_type), [0, 0, Decimal(0)]
        )
        cell[0] += 1
        cell[1] += 1 if event.warnings else 0
        if event.event_type == "purchase":
            cell[2] += event.revenue or 0
    return {key: tuple(cell) for key, cell in totals.items()}


def assert_event_totals_exact() -> None:
    """Event totals of both grains equal the event metrics summed over device and country,
    and the raw events under the watermark."""
    assert_rollup_exact(GRAINS, event_totals, event_metrics_summed, raw_event_totals)


# ---------------------------------------------------------------------------------------------
# Session totals (per start bucket and furthest step, without device and country).


def session_totals(grain: str) -> dict:
    """{(bucket, step): (sessions, revenue)} of the session totals; emptied rows (their sessions
    moved to another bucket or step) count as absent, and must hold no revenue either."""
    rows = SESSION_TOTAL[grain].objects.values_list("bucket", "reached_step", "sessions", "revenue")
    assert all(revenue == 0 for *_, sessions, revenue in rows if sessions == 0)
    return {(bucket, step): (n, revenue) for bucket, step, n, revenue in rows if n}


def session_metrics_summed(grain: str) -> dict:
    rows = (
        SESSION_METRIC[grain]
        .objects.values_list("bucket", "reached_step")
        .annotate(n=Sum("sessions"), r=Sum("revenue"))
    )
    return {(bucket, step): (n, revenue) for bucket, step, n, revenue in rows if n}


def raw_session_totals(grain: str) -> dict:
    """Sessions per (start bucket, furthest step) computed in Python from the stored events
    under the watermark: a session starts at its first event by (timestamp, id)."""
    sessions: dict[str, dict] = {}
    for event in events_under_watermark():
        state = sessions.setdefault(event.session_id, {"first": None, "step": 0, "revenue": 0})
        key = (event.timestamp, event.pk)
        if state["first"] is None or key < state["first"]:
            state["first"] = key
        if event.event_type in FUNNEL_STEPS:
            step = FUNNEL_STEPS.index(event.event_type) + 1
            state["step"] = max(state["step"], step)
        if event.event_type == "purchase":
            state["revenue"] += event.revenue or 0
    totals: dict[Any, list] = {}
    for state in sessions.values():
        bucket = utc_bucket(state["first"][0], grain)
        cell = totals.setdefault((bucket, state["step"]), [0, Decimal(0)])
        cell[0] += 1
        cell[1] += state["revenue"]
    return {key: tuple(cell) for key, cell in totals.items()}


def assert_session_totals_exact() -> None:
    """Session totals of both grains equal the session metrics summed over device and country,
    and the sessions computed from the raw events under the watermark."""
    assert_rollup_exact(GRAINS, session_totals, session_metrics_summed, raw_session_totals)
