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
    any_of,
    datetimes_fast,
    in_period,
    memo,
    micros,
    rollup_cached,
    tail,
)
from reports.readers.tail_summary import Period, session_merge, tail_summary


def _tail_session_deltas() -> dict[tuple, tuple[int, Decimal]]:
    """Big tails (aggregated in SQL): {(start, device, country, step): (sessions, revenue)},
    minus each tail session's rolled-up row, plus its row merged with the tail; starts in
    integer microseconds, as in a summary."""
    tail_states = raw.session_states(None, tail())
    if not tail_states:
        return {}
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
    old_rows = {row[0]: (micros(row[1]), *row[2:]) for row in datetimes_fast(rolled, *fields)}
    cells: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
    for state in tail_states:
        old = old_rows.get(state["session_id"])
        if old is not None:
            cell = cells[(old[0], *old[2:5])]
            cell[0] -= 1
            cell[1] -= old[5]
        new = (
            micros(state["started_at"]),
            state["first_event"],
            state["device_type"],
            state["country"],
            state["reached_step"],
            state["revenue"],
        )
        merged = session_merge(old, new)
        cell = cells[(merged[0], *merged[2:5])]
        cell[0] += 1
        cell[1] += merged[5]
    return {key: tuple(value) for key, value in cells.items()}


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
    summary = tail_summary()
    if summary is None:
        deltas = memo("session_deltas", _tail_session_deltas)
    else:
        deltas = summary.session_deltas()
    period = Period(filters)
    for (start, device, country, step), (sessions, revenue) in deltas.items():
        if period.matches(start, device, country):
            key = None if field is None else device if field == "device_type" else country
            add(key, step, sessions, revenue)
    pruned = {
        key: {step: cell for step, cell in cells.items() if cell["sessions"]}
        for key, cells in result.items()
    }
    return {key: cells for key, cells in pruned.items() if cells}
