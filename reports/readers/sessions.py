"""Sessions by start bucket, first device/country and furthest funnel step: rollup rows plus
tail sessions merged with their rolled-up rows exactly as the next fold will merge them."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from reports import raw, rollups
from reports.filters import DashboardFilters
from reports.models import SessionRollup
from reports.readers.tail import (
    TailEvent,
    any_of,
    datetimes_fast,
    in_period,
    memo,
    rollup_cached,
    tail,
    tail_events,
    tail_is_empty,
)

STEP_INDEX = {step: index + 1 for index, step in enumerate(raw.FUNNEL_STEPS)}


def _session_matches(state: dict[str, Any], filters: DashboardFilters) -> bool:
    return (
        filters.start <= state["started_at"] < filters.end
        and (not filters.device or state["device_type"] == filters.device)
        and (not filters.country or state["country"] == filters.country)
    )


def _session_merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The same merge as the rollup's session upsert."""
    if old is None:
        return new
    first = (
        new
        if (new["started_at"], new["first_event"]) < (old["started_at"], old["first_event"])
        else old
    )
    return {
        "started_at": first["started_at"],
        "first_event": first["first_event"],
        "device_type": first["device_type"],
        "country": first["country"],
        "reached_step": max(old["reached_step"], new["reached_step"]),
        "revenue": old["revenue"] + new["revenue"],
    }


def _session_states_of(events: list[TailEvent]) -> list[dict[str, Any]]:
    """raw.session_states, in Python over loaded tail events."""
    states: dict[str, dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: (e.timestamp, e.id)):
        state = states.get(event.session_id)
        if state is None:
            state = states[event.session_id] = {
                "session_id": event.session_id,
                "started_at": event.timestamp,
                "first_event": event.id,
                "user_id": event.user_id,
                "device_type": event.device_type,
                "country": event.country,
                "ended_at": event.timestamp,
                "events": 0,
                "pages": 0,
                "reached_step": 0,
                "revenue": Decimal(0),
            }
        state["ended_at"] = event.timestamp
        state["events"] += 1
        state["pages"] += event.event_type == "page_view"
        state["reached_step"] = max(state["reached_step"], STEP_INDEX.get(event.event_type, 0))
        if event.event_type == "purchase" and event.revenue is not None:
            state["revenue"] += event.revenue
    return list(states.values())


def _tail_sessions() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Tail sessions (merged over tail events) and their rolled-up rows, if any."""
    events = tail_events()
    tail_states = raw.session_states(None, tail()) if events is None else _session_states_of(events)
    if not tail_states:
        return [], {}
    fields = (
        "session_id",
        "started_at",
        "first_event_pk",
        "device_type",
        "country",
        "reached_step",
        "revenue",
    )
    rolled = any_of(
        SessionRollup.objects.all(), "session_id", [state["session_id"] for state in tail_states]
    )
    old_rows = {}
    for values in datetimes_fast(rolled, *fields):
        row = dict(zip(fields, values, strict=True))
        old_rows[row["session_id"]] = {**row, "first_event": row["first_event_pk"]}
    return tail_states, old_rows


def session_steps(
    filters: DashboardFilters, split_by: str | None = None
) -> dict[str | None, dict[int, dict[str, Any]]]:
    """{split key: {reached_step: {"sessions", "revenue"}}} for sessions started in the period
    (key None when not split)."""
    field = {"device": "device_type", "country": "country"}.get(split_by or "")
    model = rollups.SESSION_METRIC[filters.bucket]
    result: dict[str | None, dict[int, dict[str, Any]]] = defaultdict(dict)

    def add(key: str | None, step: int, sessions: int, revenue: Decimal) -> None:
        cell = result[key].setdefault(step, {"sessions": 0, "revenue": Decimal(0)})
        cell["sessions"] += sessions
        cell["revenue"] += revenue

    group = [field, "reached_step"] if field else ["reached_step"]
    rows = rollup_cached(
        f"sessions_by_{field or 'all'}",
        filters,
        lambda: list(
            in_period(model.objects.all(), filters)
            .values(*group)
            .annotate(n=Sum("sessions"), revenue=Sum("revenue"))
            .order_by()
        ),
    )
    for row in rows:
        add(row[field] if field else None, row["reached_step"], row["n"], row["revenue"])
    tail_states, old_rows = ([], {}) if tail_is_empty() else memo("sessions", _tail_sessions)
    for state in tail_states:
        old = old_rows.get(state["session_id"])
        if old is not None and _session_matches(old, filters):
            add(old[field] if field else None, old["reached_step"], -1, -old["revenue"])
        merged = _session_merge(old, state)
        if _session_matches(merged, filters):
            add(merged[field] if field else None, merged["reached_step"], 1, merged["revenue"])
    pruned = {
        key: {step: cell for step, cell in cells.items() if cell["sessions"]}
        for key, cells in result.items()
    }
    return {key: cells for key, cells in pruned.items() if cells}
