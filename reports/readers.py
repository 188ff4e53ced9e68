"""Where dashboard numbers come from: rollup tables plus the raw tail after the watermark.

Rollups hold exactly the events up to the watermark (received_at, id); the tail is every event
after it. Additive numbers are rollup + tail. Distinct users add the tail's users that the
rollup does not already have; sessions and first-seen dates in the tail are merged with their
rolled-up state, subtracting the old contribution and adding the merged one, exactly as the
rollup task will when it folds them in.

`read_snapshot()` wraps a read in one REPEATABLE READ transaction on PostgreSQL, so the
watermark, the rollups and the tail come from the same snapshot even while a rollup commits.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import BooleanField, Case, Count, Q, QuerySet, Sum, When
from django.db.models.expressions import RawSQL

from events.models import Event
from reports import raw, rollups
from reports.filters import DashboardFilters, floor_day, floor_hour
from reports.models import SessionRollup, UserFirstSeen

STEP_INDEX = {step: index + 1 for index, step in enumerate(raw.FUNNEL_STEPS)}
_tail_var: contextvars.ContextVar[QuerySet[Event] | None] = contextvars.ContextVar(
    "rollup_tail", default=None
)
# Tail-derived data that does not depend on filters, computed once per snapshot.
_memo_var: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "rollup_tail_memo", default=None
)


@contextlib.contextmanager
def read_snapshot() -> Iterator[None]:
    """One consistent snapshot for every query of a dashboard read."""
    if _tail_var.get() is not None:  # nested: reuse the outer snapshot
        yield
        return
    with contextlib.ExitStack() as stack:
        if not connection.in_atomic_block:
            stack.enter_context(transaction.atomic())
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        generation, received_at, event_pk = rollups.rollup_state()
        token = _tail_var.set(rollups.events_after_watermark(received_at, event_pk))
        memo_token = _memo_var.set(
            {
                "rollup_key": f"{generation}:{received_at.isoformat() if received_at else '-'}"
                f":{event_pk}"
            }
        )
        try:
            yield
        finally:
            _memo_var.reset(memo_token)
            _tail_var.reset(token)


def _memo(key: str, compute: Callable[[], Any]) -> Any:
    memo = _memo_var.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _rollup_cached(name: str, filters: DashboardFilters, compute: Callable[[], Any]) -> Any:
    """The rollup part of a number, cached per rollup state.

    Rollup tables change only when the watermark moves or a rebuild bumps the generation, so a
    value keyed by (generation, watermark) is exact for as long as it lives. The raw tail is
    never cached. Outside a snapshot there is no consistent key: compute directly.
    """
    memo = _memo_var.get()
    if memo is None:
        return compute()
    key = (
        f"reports:rollup:{memo['rollup_key']}:{name}:{filters.start.isoformat()}:"
        f"{filters.end.isoformat()}:{filters.device or '-'}:{filters.country or '-'}"
    )
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, getattr(settings, "ROLLUP_CACHE_SECONDS", 600))
    return value


def _tail_is_empty() -> bool:
    return _memo("tail_empty", lambda: not _tail().exists())


def _tail() -> QuerySet[Event]:
    tail = _tail_var.get()
    if tail is None:
        tail = rollups.events_after_watermark(*rollups.watermark_get())
    return tail


@dataclass(frozen=True, slots=True)
class TailEvent:
    id: int
    event_type: str
    timestamp: dt.datetime
    user_id: str
    session_id: str
    device_type: str
    country: str
    product_id: str
    category: str
    revenue: Decimal | None
    warned: bool


def _tail_events() -> list[TailEvent] | None:
    """The tail loaded once per snapshot when it is small (the normal case: the rollup task
    runs every few seconds), so every tail number is a Python pass instead of a query.
    None when the tail is too big to load: readers then aggregate it in SQL."""

    def load() -> list[TailEvent] | None:
        if _tail_is_empty():
            return []
        limit = getattr(settings, "ROLLUP_TAIL_IN_MEMORY_MAX", 50_000)
        rows = list(
            _tail()
            .annotate(
                warned=Case(When(raw.WARNED, then=True), default=False, output_field=BooleanField())
            )
            .values_list(
                "id",
                "event_type",
                "timestamp",
                "user_id",
                "session_id",
                "device_type",
                "country",
                "product_id",
                "category",
                "revenue",
                "warned",
            )[: limit + 1]
        )
        if len(rows) > limit:
            return None
        return [TailEvent(*row) for row in rows]

    return _memo("tail_events", load)


def _tail_in(events: list[TailEvent], filters: DashboardFilters) -> list[TailEvent]:
    return [
        event
        for event in events
        if filters.start <= event.timestamp < filters.end
        and (not filters.device or event.device_type == filters.device)
        and (not filters.country or event.country == filters.country)
    ]


def _in_period(qs: QuerySet, filters: DashboardFilters) -> QuerySet:
    qs = qs.filter(bucket__gte=filters.start, bucket__lt=filters.end)
    if filters.device:
        qs = qs.filter(device_type=filters.device)
    if filters.country:
        qs = qs.filter(country=filters.country)
    return qs


def event_buckets(filters: DashboardFilters) -> list[dict[str, Any]]:
    """Rows of (bucket, event_type, events, revenue, warned); a key may repeat (rollup, tail)."""
    model = rollups.EVENT_METRIC[filters.bucket]

    def rolled() -> list[dict[str, Any]]:
        rows = (
            _in_period(model.objects.all(), filters)
            .values("bucket", "event_type")
            .annotate(events=Sum("events"), warned=Sum("warned"), revenue=Sum("revenue"))
            .order_by()
        )
        return [{**row, "bucket": row["bucket"].astimezone(dt.UTC)} for row in rows]

    result = list(_rollup_cached("event_buckets", filters, rolled))
    events = _tail_events()
    if events is None:
        return result + raw.event_bucket_rows(raw.events_in(filters, _tail()), filters.bucket)
    floor = floor_hour if filters.bucket == "hour" else floor_day
    cells: dict[tuple[dt.datetime, str], dict[str, Any]] = {}
    for event in _tail_in(events, filters):
        key = (floor(event.timestamp), event.event_type)
        cell = cells.setdefault(key, {"events": 0, "revenue": Decimal(0), "warned": 0})
        cell["events"] += 1
        cell["warned"] += event.warned
        if event.event_type == "purchase" and event.revenue is not None:
            cell["revenue"] += event.revenue
    tail_rows = [
        {"bucket": bucket, "event_type": event_type, **cell}
        for (bucket, event_type), cell in cells.items()
    ]
    return result + tail_rows


def dimension_events(filters: DashboardFilters, field: str) -> dict[str, int]:
    model = rollups.EVENT_METRIC[filters.bucket]

    def rolled() -> dict[str, int]:
        rows = _in_period(model.objects.all(), filters).values(field).annotate(n=Sum("events"))
        return {row[field]: row["n"] for row in rows.order_by()}

    totals: dict[str, int] = defaultdict(int, _rollup_cached(f"events_by_{field}", filters, rolled))
    events = _tail_events()
    if events is not None:
        for event in _tail_in(events, filters):
            totals[getattr(event, field)] += 1
        return dict(totals)
    for row in raw.dimension_rows(raw.events_in(filters, _tail()), field):
        totals[row[field]] += row["events"]
    return dict(totals)


def _any(qs: QuerySet, column: str, values: Iterable[str]) -> QuerySet:
    """`column IN values` for long value lists: one array parameter on PostgreSQL (Django
    compiles an IN list value by value, which costs more than the query for thousands)."""
    values = list(values)
    if connection.vendor != "postgresql":
        return qs.filter(**{f"{column}__in": values})
    table = qs.model._meta.db_table
    # Identifiers come from the model; the values are one bound parameter.
    condition = RawSQL(  # noqa: S611
        f'"{table}"."{column}" = ANY(%s)', [values], output_field=BooleanField()
    )
    return qs.filter(condition)


def _tail_user_ids(filters: DashboardFilters, field: str | None) -> Any:
    events = _tail_events()
    if events is None:
        return raw.user_ids(raw.events_in(filters, _tail()), field)
    selected = _tail_in(events, filters)
    if field is None:
        return {event.user_id for event in selected}
    grouped: dict[str, set[str]] = defaultdict(set)
    for event in selected:
        grouped[getattr(event, field)].add(event.user_id)
    return grouped


def _tail_users_rolled_activity(filters: DashboardFilters) -> set[tuple[str, str, str]]:
    """(user, device, country) rows the rollup holds in the period for the tail's users: one
    query shared by every distinct-user correction of a read."""

    def load() -> set[tuple[str, str, str]]:
        tail_users = _memo("first_seen", _tail_first_seen)
        activity = _in_period(rollups.USER_ACTIVITY[filters.bucket].objects.all(), filters)
        rows = _any(activity, "user_id", tail_users).values_list(
            "user_id", "device_type", "country"
        )
        return set(rows.distinct())

    key = f"tail_activity:{filters.start}:{filters.end}:{filters.device}:{filters.country}"
    return _memo(key, load)


def users(filters: DashboardFilters, field: str | None = None) -> Any:
    """Distinct users active in the period: a count, or {dimension value: count}."""
    activity = _in_period(rollups.USER_ACTIVITY[filters.bucket].objects.all(), filters)
    tail_users = _tail_user_ids(filters, field)
    if field is None:
        count = _rollup_cached("users", filters, activity.values("user_id").distinct().count)
        if tail_users:
            known = {user_id for user_id, _, _ in _tail_users_rolled_activity(filters)}
            count += len(tail_users - known)
        return count
    counts = dict(
        _rollup_cached(
            f"users_by_{field}",
            filters,
            lambda: {
                row[field]: row["n"]
                for row in activity.values(field)
                .annotate(n=Count("user_id", distinct=True))
                .order_by()
            },
        )
    )
    if tail_users:
        position = 1 if field == "device_type" else 2
        known = {(row[position], row[0]) for row in _tail_users_rolled_activity(filters)}
        for key, ids in tail_users.items():
            new = sum(1 for user_id in ids if (key, user_id) not in known)
            counts[key] = counts.get(key, 0) + new
    return counts


def _tail_first_seen() -> dict[str, dt.datetime]:
    events = _tail_events()
    if events is None:
        rows = _tail().values("user_id").annotate(first=raw.Min("timestamp")).order_by()
        return {row["user_id"]: row["first"] for row in rows}
    first: dict[str, dt.datetime] = {}
    for event in events:
        if event.user_id not in first or event.timestamp < first[event.user_id]:
            first[event.user_id] = event.timestamp
    return first


def new_vs_returning(filters: DashboardFilters) -> dict[str, int]:
    """Active users of the period whose first event ever is in it (new) or before (returning)."""
    activity = _in_period(rollups.USER_ACTIVITY[filters.bucket].objects.all(), filters)
    active = activity.values("user_id").distinct()
    totals = _rollup_cached(
        "new_vs_returning",
        filters,
        lambda: UserFirstSeen.objects.filter(user_id__in=active).aggregate(
            total=Count("id"), new=Count("id", filter=Q(first_seen__gte=filters.start))
        ),
    )
    new, total = totals["new"], totals["total"]
    if _tail_is_empty():
        return {"new": new, "returning": total - new}
    tail_first = _memo("first_seen", _tail_first_seen)
    if tail_first:
        tail_active = _tail_user_ids(filters, None)
        rolled_first = dict(
            _any(UserFirstSeen.objects.all(), "user_id", tail_first).values_list(
                "user_id", "first_seen"
            )
        )
        rolled_active = {user_id for user_id, _, _ in _tail_users_rolled_activity(filters)}
        for user_id, first in tail_first.items():
            if user_id in rolled_active:  # undo its rolled-up classification
                total -= 1
                new -= rolled_first[user_id] >= filters.start
            if user_id in rolled_active or user_id in tail_active:
                merged = min(first, rolled_first.get(user_id, first))
                total += 1
                new += merged >= filters.start
    return {"new": int(new), "returning": int(total - new)}


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
    events = _tail_events()
    tail_states = (
        raw.session_states(None, _tail()) if events is None else _session_states_of(events)
    )
    if not tail_states:
        return [], {}
    rows = _any(
        SessionRollup.objects.all(), "session_id", [state["session_id"] for state in tail_states]
    ).values(
        "session_id",
        "started_at",
        "first_event_pk",
        "device_type",
        "country",
        "reached_step",
        "revenue",
    )
    old_rows = {row["session_id"]: {**row, "first_event": row["first_event_pk"]} for row in rows}
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
    rows = _rollup_cached(
        f"sessions_by_{field or 'all'}",
        filters,
        lambda: list(
            _in_period(model.objects.all(), filters)
            .values(*group)
            .annotate(n=Sum("sessions"), revenue=Sum("revenue"))
            .order_by()
        ),
    )
    for row in rows:
        add(row[field] if field else None, row["reached_step"], row["n"], row["revenue"])
    tail_states, old_rows = ([], {}) if _tail_is_empty() else _memo("sessions", _tail_sessions)
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


def product_rows(filters: DashboardFilters) -> list[dict[str, Any]]:
    """Rows of (product_id, category, event_type, events, revenue); keys may repeat."""
    model = rollups.PRODUCT_METRIC[filters.bucket]
    rows = _rollup_cached(
        "products",
        filters,
        lambda: list(
            _in_period(model.objects.all(), filters)
            .values("product_id", "category", "event_type")
            .annotate(events=Sum("events"), revenue=Sum("revenue"))
            .order_by()
        ),
    )
    events = _tail_events()
    if events is None:
        return list(rows) + raw.product_rows(raw.events_in(filters, _tail()))
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for event in _tail_in(events, filters):
        if event.event_type not in raw.PRODUCT_EVENT_TYPES:
            continue
        key = (event.product_id, event.category, event.event_type)
        cell = cells.setdefault(key, {"events": 0, "revenue": Decimal(0)})
        cell["events"] += 1
        cell["revenue"] += event.revenue or 0
    tail_rows = [
        {"product_id": product, "category": category, "event_type": event_type, **cell}
        for (product, category, event_type), cell in cells.items()
    ]
    return list(rows) + tail_rows


def category_revenue(filters: DashboardFilters) -> dict[str, Decimal]:
    model = rollups.PRODUCT_METRIC[filters.bucket]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    rows = _rollup_cached(
        "category_revenue",
        filters,
        lambda: list(
            _in_period(model.objects.filter(event_type="purchase"), filters)
            .values("category")
            .annotate(revenue=Sum("revenue"))
            .order_by()
        ),
    )
    for row in rows:
        totals[row["category"]] += row["revenue"]
    events = _tail_events()
    if events is not None:
        for event in _tail_in(events, filters):
            if event.event_type == "purchase":
                totals[event.category] += event.revenue or 0
        return dict(totals)
    for row in raw.category_revenue_rows(raw.events_in(filters, _tail())):
        totals[row["category"]] += row["revenue"]
    return dict(totals)
