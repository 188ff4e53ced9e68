"""Sessions by start bucket, first device/country and furthest funnel step: rollup rows plus
tail sessions merged with their rolled-up rows exactly as the next fold will merge them."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Sum

from events.facade import EVENTS_TABLE
from reports.filters import DashboardFilters
from reports.models import SessionRollup
from reports.models.grains import FUNNEL_STEPS, SESSION_METRIC, SESSION_TOTAL
from reports.selectors import raw_events
from reports.selectors.tail import in_period, memo, micros, rollup_cached, tail, tail_where
from reports.selectors.tail_summary import (
    Period,
    Session,
    rolled_sessions,
    session_merge,
    tail_summary,
)

_STEP_CASE = (
    "CASE event_type "
    + " ".join(f"WHEN '{step}' THEN {index + 1}" for index, step in enumerate(FUNNEL_STEPS))
    + " ELSE 0 END"
)
_EPOCH_US = "(EXTRACT(EPOCH FROM {}) * 1000000)::bigint"


def _sql_tail_sessions() -> list[tuple[Session, Session | None]]:
    """(tail state, rolled-up row) of every tail session, in one query on PostgreSQL: one sort
    of the tail by session (first event, and the session's step and revenue over its window;
    no join of two aggregates, which the planner nests when it expects a tiny tail), then one
    index probe per session for its rolled-up row."""
    where, params = tail_where()
    sql = f"""
        WITH t AS (
            SELECT DISTINCT ON (session_id) session_id, {_EPOCH_US.format("timestamp")} AS start,
                id, device_type, country,
                MAX({_STEP_CASE}) OVER (PARTITION BY session_id) AS step,
                COALESCE(SUM(revenue) FILTER (WHERE event_type = 'purchase')
                    OVER (PARTITION BY session_id), 0) AS revenue
            FROM {EVENTS_TABLE} WHERE {where}
            ORDER BY session_id, timestamp, id
        )
        SELECT t.start, t.id, t.device_type, t.country, t.step, t.revenue,
            r.start, r.first_event_pk, r.device_type, r.country, r.reached_step, r.revenue
        FROM t LEFT JOIN LATERAL (
            SELECT {_EPOCH_US.format("started_at")} AS start, first_event_pk, device_type,
                country, reached_step, revenue
            FROM {SessionRollup._meta.db_table} WHERE session_id = t.session_id LIMIT 1
        ) r ON TRUE
    """  # noqa: S608 (identifiers from the models; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(row[:6], row[6:] if row[6] is not None else None) for row in cursor.fetchall()]


def _orm_tail_sessions() -> list[tuple[Session, Session | None]]:
    tail_states = raw_events.session_states(None, tail())
    old_rows = rolled_sessions([state["session_id"] for state in tail_states])
    return [
        (
            (
                micros(state["started_at"]),
                state["first_event"],
                state["device_type"],
                state["country"],
                state["reached_step"],
                state["revenue"],
            ),
            old_rows.get(state["session_id"]),
        )
        for state in tail_states
    ]


def _tail_session_deltas() -> dict[tuple, tuple[int, Decimal]]:
    """Big tails (aggregated in SQL): {(start, device, country, step): (sessions, revenue)},
    minus each tail session's rolled-up row, plus its row merged with the tail; starts in
    integer microseconds, as in a summary."""
    pairs = _sql_tail_sessions() if connection.vendor == "postgresql" else _orm_tail_sessions()
    cells: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
    for new, old in pairs:
        if old is not None:
            cell = cells[(old[0], *old[2:5])]
            cell[0] -= 1
            cell[1] -= old[5]
        merged = session_merge(old, new)
        cell = cells[(merged[0], *merged[2:5])]
        cell[0] += 1
        cell[1] += merged[5]
    return {key: tuple(value) for key, value in cells.items()}


def _rolled_session_cells(
    filters: DashboardFilters, *, split: bool
) -> list[tuple[str, str, int, int, Decimal]]:
    """(device, country, step, sessions, revenue) rows of the rollup part, once per snapshot.

    Split reads (the funnel, by device and by country) and filtered ones group the session
    metrics by all three: one pass over the period's rows (~32,000 at 90 days on 10M events)
    serves both splits. An unsplit read without a device or country filter (overview,
    products) groups the session totals instead (~540 rows), under its own cache name; its
    rows have device and country '' (the caller reads them only when splitting)."""
    if not split and not (filters.device or filters.country):
        totals = SESSION_TOTAL[filters.bucket]

        def rolled_totals() -> list[tuple[str, str, int, int, Decimal]]:
            rows = (
                in_period(totals.objects.all(), filters)
                .values_list("reached_step")
                .annotate(n=Sum("sessions"), revenue=Sum("revenue"))
                .order_by()
            )
            return [("", "", step, sessions, revenue) for step, sessions, revenue in rows]

        return memo(
            f"session_totals:{filters.bucket}:{filters.start}:{filters.end}",
            lambda: rollup_cached("session_totals", filters, rolled_totals),
        )
    model = SESSION_METRIC[filters.bucket]

    def rolled() -> list[tuple[str, str, int, int, Decimal]]:
        return list(
            in_period(model.objects.all(), filters)
            .values_list("device_type", "country", "reached_step")
            .annotate(n=Sum("sessions"), revenue=Sum("revenue"))
            .order_by()
        )

    key = f"session_cells:{filters.bucket}:{filters.start}:{filters.end}"
    return memo(
        f"{key}:{filters.device}:{filters.country}",
        lambda: rollup_cached("session_cells", filters, rolled),
    )


def session_steps(
    filters: DashboardFilters, split_by: str | None = None
) -> dict[str | None, dict[int, dict[str, Any]]]:
    """{split key: {reached_step: {"sessions", "revenue"}}} for sessions started in the period
    (key None when not split)."""
    field = {"device": "device_type", "country": "country"}.get(split_by or "")
    result: dict[str | None, dict[int, dict[str, Any]]] = defaultdict(dict)

    def add(key: str | None, step: int, sessions: int, revenue: Decimal) -> None:
        cell = result[key].setdefault(step, {"sessions": 0, "revenue": Decimal(0)})
        cell["sessions"] += sessions
        cell["revenue"] += revenue

    rolled = _rolled_session_cells(filters, split=field is not None)
    for device, country, step, sessions, revenue in rolled:
        key = None if field is None else device if field == "device_type" else country
        add(key, step, sessions, revenue)
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
