"""The read snapshot, the per-snapshot memo and the raw tail after the rollup watermark.

`read_snapshot()` wraps a read in one REPEATABLE READ transaction on PostgreSQL, so the
watermark, the rollups and the tail come from the same snapshot even while a rollup commits.
Tail-derived data that does not depend on filters is computed once per snapshot (`memo`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import BooleanField, Case, QuerySet, When
from django.db.models.expressions import RawSQL

from events.models import Event
from reports import raw, rollups
from reports.filters import DashboardFilters, floor_day, floor_hour

# A read groups tens of thousands of rollup rows by text keys: with the default 4 MB the planner
# sorts them instead (slow under a non-C collation) or spills to disk.
READ_WORK_MEM = "64MB"

_tail_var: contextvars.ContextVar[QuerySet[Event] | None] = contextvars.ContextVar(
    "rollup_tail", default=None
)
_memo_var: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "rollup_tail_memo", default=None
)
_mark_var: contextvars.ContextVar[tuple[dt.datetime | None, int]] = contextvars.ContextVar(
    "rollup_watermark", default=(None, 0)
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
                    cursor.execute(f"SET LOCAL work_mem = '{READ_WORK_MEM}'")
        generation, received_at, event_pk = rollups.rollup_state()
        token = _tail_var.set(rollups.events_after_watermark(received_at, event_pk))
        mark_token = _mark_var.set((received_at, event_pk))
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
            _mark_var.reset(mark_token)
            _tail_var.reset(token)


def memo(key: str, compute: Callable[[], Any]) -> Any:
    """`compute()` once per read snapshot (directly outside one)."""
    values = _memo_var.get()
    if values is None:
        return compute()
    if key not in values:
        values[key] = compute()
    return values[key]


def rollup_cached(name: str, filters: DashboardFilters, compute: Callable[[], Any]) -> Any:
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


def tail_is_empty() -> bool:
    """Answered by the tail load itself (no separate EXISTS query): a big tail is not empty."""
    return tail_events() == []


def tail() -> QuerySet[Event]:
    tail = _tail_var.get()
    if tail is None:
        tail = rollups.events_after_watermark(*rollups.watermark_get())
    return tail


class TailEvent(NamedTuple):
    """One raw event after the watermark (a tuple: thousands are built per read)."""

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
    hour: dt.datetime  # UTC bucket starts, computed once at load
    day: dt.datetime


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US
_TAIL_COLUMNS = (
    "id, event_type, {timestamp}, user_id, session_id, device_type, country, product_id, "
    "category, revenue, (warnings IS NOT NULL AND warnings <> '[]'::jsonb)"
)


def _tail_rows_postgres(limit: int) -> list[tuple]:
    """Tail rows with the event time as integer microseconds since the epoch: Django's
    timestamptz loader parses text in Python (~15 µs a value, most of a 5,000-event tail's
    load); integers load in C and become datetimes in well under a microsecond."""
    received_at, event_pk = rollups.watermark_get() if _tail_var.get() is None else _mark_var.get()
    where, params = "TRUE", []
    if received_at is not None:
        where = "received_at >= %s AND (received_at > %s OR id > %s)"
        params = [received_at, received_at, event_pk]
    columns = _TAIL_COLUMNS.format(timestamp="(EXTRACT(EPOCH FROM timestamp) * 1000000)::bigint")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {Event._meta.db_table} WHERE {where} LIMIT %s",  # noqa: S608
            [*params, limit + 1],
        )
        return cursor.fetchall()


def moment(micros: int) -> dt.datetime:
    """A UTC datetime from integer microseconds since the epoch (see `datetimes_fast`)."""
    return _EPOCH + dt.timedelta(microseconds=micros)


def datetimes_fast(qs: QuerySet, *fields: str) -> list[tuple]:
    """`qs.values_list(*fields)`, with DateTimeFields loaded as integers on PostgreSQL and
    turned into datetimes here: a thousand datetimes cost ~15 ms through Django's loader."""
    if connection.vendor != "postgresql":
        return list(qs.values_list(*fields))
    table = qs.model._meta.db_table
    datetime_fields = {
        name
        for name in fields
        if qs.model._meta.get_field(name).get_internal_type() == "DateTimeField"
    }
    annotations = {
        f"{name}_us": RawSQL(  # noqa: S611 (identifiers from the model, no values)
            f'(EXTRACT(EPOCH FROM "{table}"."{name}") * 1000000)::bigint', []
        )
        for name in datetime_fields
    }
    names = [f"{name}_us" if name in datetime_fields else name for name in fields]
    positions = [index for index, name in enumerate(fields) if name in datetime_fields]
    rows = []
    for row in qs.annotate(**annotations).values_list(*names):
        row = list(row)
        for index in positions:
            row[index] = moment(row[index])
        rows.append(tuple(row))
    return rows


def _tail_events_postgres(limit: int) -> list[TailEvent] | None:
    rows = _tail_rows_postgres(limit)
    if len(rows) > limit:
        return None
    buckets: dict[int, dt.datetime] = {}

    def bucket(micros: int) -> dt.datetime:
        value = buckets.get(micros)
        if value is None:
            value = buckets[micros] = moment(micros)
        return value

    return [
        TailEvent(
            *row[:2],
            moment(row[2]),
            *row[3:],
            bucket(row[2] - row[2] % _HOUR_US),
            bucket(row[2] - row[2] % _DAY_US),
        )
        for row in rows
    ]


def _tail_events_orm(limit: int) -> list[TailEvent] | None:
    rows = list(
        tail()
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
    return [TailEvent(*row, floor_hour(row[2]), floor_day(row[2])) for row in rows]


def tail_events() -> list[TailEvent] | None:
    """The tail loaded once per snapshot when it is small (the normal case: the rollup task
    runs every few seconds), so every tail number is a Python pass instead of a query.
    None when the tail is too big to load: readers then aggregate it in SQL."""

    def load() -> list[TailEvent] | None:
        limit = getattr(settings, "ROLLUP_TAIL_IN_MEMORY_MAX", 50_000)
        if connection.vendor == "postgresql":
            return _tail_events_postgres(limit)
        return _tail_events_orm(limit)

    return memo("tail_events", load)


def tail_in(events: list[TailEvent], filters: DashboardFilters) -> list[TailEvent]:
    return [
        event
        for event in events
        if filters.start <= event.timestamp < filters.end
        and (not filters.device or event.device_type == filters.device)
        and (not filters.country or event.country == filters.country)
    ]


def in_period(qs: QuerySet, filters: DashboardFilters) -> QuerySet:
    qs = qs.filter(bucket__gte=filters.start, bucket__lt=filters.end)
    if filters.device:
        qs = qs.filter(device_type=filters.device)
    if filters.country:
        qs = qs.filter(country=filters.country)
    return qs


def any_of(qs: QuerySet, column: str, values: Iterable[str]) -> QuerySet:
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


def tail_user_ids(filters: DashboardFilters, field: str | None) -> Any:
    events = tail_events()
    if events is None:
        return raw.user_ids(raw.events_in(filters, tail()), field)
    selected = tail_in(events, filters)
    if field is None:
        return {event.user_id for event in selected}
    grouped: dict[str, set[str]] = defaultdict(set)
    for event in selected:
        grouped[getattr(event, field)].add(event.user_id)
    return grouped


def tail_first_seen() -> dict[str, dt.datetime]:
    events = tail_events()
    if events is None:
        rows = tail().values("user_id").annotate(first=raw.Min("timestamp")).order_by()
        return {row["user_id"]: row["first"] for row in rows}
    first: dict[str, dt.datetime] = {}
    for event in events:
        if event.user_id not in first or event.timestamp < first[event.user_id]:
            first[event.user_id] = event.timestamp
    return first
