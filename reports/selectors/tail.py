"""The read snapshot, the per-snapshot memo and the raw tail after the rollup watermark.

`read_snapshot()` wraps a read in one REPEATABLE READ transaction on PostgreSQL, so the
watermark, the rollups and the tail come from the same snapshot even while a rollup commits.
Tail-derived data that does not depend on filters is computed once per snapshot (`memo`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import BooleanField, Case, QuerySet, When

from events.facade import EVENTS_TABLE, events_with_person, person_key_sql
from events.receive_order import ReceivePosition, after_sql
from reports.filters import DashboardFilters
from reports.locks import rollup_tables_lock
from reports.selectors import raw_events
from reports.selectors.watermark import events_after_watermark, rollup_state, watermark_get

# A read groups tens of thousands of rollup rows by text keys: with the default 4 MB the planner
# sorts them instead (slow under a non-C collation) or spills to disk.
READ_WORK_MEM = "64MB"

_tail_var: contextvars.ContextVar[QuerySet | None] = contextvars.ContextVar(
    "rollup_tail", default=None
)
_memo_var: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "rollup_tail_memo", default=None
)
_state_var: contextvars.ContextVar[tuple | None] = contextvars.ContextVar(
    "rollup_state", default=None
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
        rollup_tables_lock(shared=True)  # not while a rebuild truncates (reports.locks)
        generation, txid, event_pk = rollup_state()
        token = _tail_var.set(events_after_watermark(ReceivePosition(txid, event_pk)))
        state_token = _state_var.set((generation, txid, event_pk))
        memo_token = _memo_var.set({"rollup_key": f"{generation}:{txid}:{event_pk}"})
        try:
            yield
        finally:
            _memo_var.reset(memo_token)
            _state_var.reset(state_token)
            _tail_var.reset(token)


def memo(key: str, compute: Callable[[], Any]) -> Any:
    """`compute()` once per read snapshot (directly outside one)."""
    values = _memo_var.get()
    if values is None:
        return compute()
    if key not in values:
        values[key] = compute()
    return values[key]


def rollup_cached(
    name: str,
    filters: DashboardFilters,
    compute: Callable[[], Any],
    seconds: int | None = None,
) -> Any:
    """The rollup part of a number, cached per rollup state (for `seconds`, by default
    ROLLUP_CACHE_SECONDS).

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
        if seconds is None:
            seconds = settings.ROLLUP_CACHE_SECONDS
        cache.set(key, value, seconds)
    return value


def rollup_state_of_snapshot() -> tuple:
    """(generation, watermark txid, watermark id) of the read's snapshot."""
    state = _state_var.get()
    return rollup_state() if state is None else state


def tail_where() -> tuple[str, list[Any]]:
    """SQL condition (and parameters) for the events after the snapshot's watermark."""
    _, txid, event_pk = rollup_state_of_snapshot()
    return after_sql(ReceivePosition(txid, event_pk))


def tail() -> QuerySet:
    tail = _tail_var.get()
    if tail is None:
        tail = events_after_watermark(watermark_get())
    return tail


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
# A tail row: id, event_type, timestamp (integer microseconds since the epoch, UTC), person,
# session_id, device_type, country, product_id, category, revenue, warned.
TailRow = tuple[int, str, int, str, str, str, str, str, str, Decimal | None, bool]
_TAIL_COLUMNS = (
    "id, event_type, (EXTRACT(EPOCH FROM timestamp) * 1000000)::bigint, "
    f"{person_key_sql()}, session_id, device_type, country, product_id, category, revenue, "
    "(warnings IS NOT NULL AND warnings <> '[]'::jsonb)"
)


def _tail_rows_postgres(limit: int, after_id: int) -> list[TailRow]:
    """Event times come as integer microseconds: Django's timestamptz loader parses text in
    Python (~15 µs a value, most of a 5,000-event tail's load); integers load in C."""
    where, params = tail_where()
    if after_id:
        where += " AND id > %s"
        params.append(after_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_TAIL_COLUMNS} FROM {EVENTS_TABLE} WHERE {where} LIMIT %s",  # noqa: S608
            [*params, limit + 1],
        )
        return cursor.fetchall()


def micros(moment: dt.datetime) -> int:
    """Integer microseconds since the epoch (the inverse of `moment`)."""
    return (moment - _EPOCH) // _MICROSECOND


def moment(micros: int) -> dt.datetime:
    """A UTC datetime from integer microseconds since the epoch."""
    return _EPOCH + dt.timedelta(microseconds=micros)


def _tail_rows_orm(limit: int, after_id: int) -> list[TailRow]:
    rows = (
        events_with_person(tail())
        .filter(id__gt=after_id)
        .annotate(
            warned=Case(
                When(raw_events.WARNED, then=True), default=False, output_field=BooleanField()
            )
        )
        .values_list(
            "id",
            "event_type",
            "timestamp",
            "person",
            "session_id",
            "device_type",
            "country",
            "product_id",
            "category",
            "revenue",
            "warned",
        )[: limit + 1]
    )
    return [(*row[:2], micros(row[2]), *row[3:]) for row in rows]


def tail_rows_load(limit: int, after_id: int = 0) -> list[TailRow] | None:
    """The snapshot's tail events with ids above `after_id`; None when more than `limit`."""
    if connection.vendor == "postgresql":
        rows = _tail_rows_postgres(limit, after_id)
    else:
        rows = _tail_rows_orm(limit, after_id)
    return None if len(rows) > limit else rows


def in_period(qs: QuerySet, filters: DashboardFilters) -> QuerySet:
    qs = qs.filter(bucket__gte=filters.start, bucket__lt=filters.end)
    if filters.device:
        qs = qs.filter(device_type=filters.device)
    if filters.country:
        qs = qs.filter(country=filters.country)
    return qs
