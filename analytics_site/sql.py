"""Raw SQL helpers shared by the incremental rollups of the quality and reports apps, and the
one PostgreSQL check of the project (`is_postgres`).

The same statements run on PostgreSQL and on SQLite (`make demo`): only time buckets and
datetime parameters differ, and these helpers hide that.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import connection

_SQLITE_BUCKET = {
    "minute": "%%Y-%%m-%%d %%H:%%M:00",
    "hour": "%%Y-%%m-%%d %%H:00:00",
    "day": "%%Y-%%m-%%d 00:00:00",
}


def is_postgres() -> bool:
    """The one PostgreSQL check: whether the default database is PostgreSQL (else SQLite, as
    in `make demo`), for code that takes a faster PostgreSQL-only path."""
    return connection.vendor == "postgresql"


def time_bucket(column: str, unit: str) -> str:
    """SQL for the start of the UTC minute, hour, day or week (Monday) of a datetime column. On
    PostgreSQL the caller's transaction runs with TIME ZONE 'UTC' (`set_local_utc`)."""
    if is_postgres():
        return f"date_trunc('{unit}', {column})"
    if unit == "week":  # back six days, then forward to the next Monday: this week's Monday
        return f"strftime('{_SQLITE_BUCKET['day']}', {column}, '-6 days', 'weekday 1')"
    return f"strftime('{_SQLITE_BUCKET[unit]}', {column})"


def has_warnings_sql() -> str:
    """SQL condition: an event row was accepted with warnings (its `warnings` list is not
    empty)."""
    if is_postgres():
        return "(warnings IS NOT NULL AND warnings <> '[]'::jsonb)"
    return "(warnings IS NOT NULL AND warnings <> '[]')"


def set_local_utc() -> None:
    """UTC time buckets for the current transaction only."""
    if is_postgres():
        sql_execute("SET LOCAL TIME ZONE 'UTC'")


def sql_param(value: Any) -> Any:
    """Datetimes as the backend stores them (SQLite keeps naive UTC text)."""
    if isinstance(value, dt.datetime) and not is_postgres():
        return connection.ops.adapt_datetimefield_value(value)
    return value


def sql_execute(sql: str, params: Sequence[Any] = ()) -> int:
    """Run one statement with backend-adapted parameters; returns the row count."""
    with connection.cursor() as cursor:
        cursor.execute(sql, [sql_param(p) for p in params])
        return cursor.rowcount


def rollup_safety_lag() -> dt.timedelta:
    """The one safety lag of every receive-order rollup: rows received within it stay in the
    raw tail, as an ingestion transaction that started earlier may still commit rows with an
    older received_at."""
    return dt.timedelta(seconds=getattr(settings, "ROLLUP_SAFETY_LAG_SECONDS", 10))


def rollup_batch_rows() -> int:
    """Rows folded per transaction: bounds a fold's memory and lock time."""
    return getattr(settings, "ROLLUP_BATCH_EVENTS", 500_000)


def fold_until_caught_up(fold_batch: Callable[[], int], max_seconds: float) -> tuple[int, int]:
    """Run `fold_batch` (one transaction, returns rows folded) until nothing is pending or the
    time budget is spent, so one periodic task never overlaps the next. (rows, batches)."""
    started = time.monotonic()
    total = batches = 0
    while count := fold_batch():
        total += count
        batches += 1
        if time.monotonic() - started > max_seconds:
            break
    return total, batches
