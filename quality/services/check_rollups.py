# SQL is built from our own table and column names only; values are always bound parameters.
# ruff: noqa: S608
"""Writes for the check rollups (`EventHour`, `NullHour`; ADR 0019), called by the intake
fold (quality.services.intake) in its transaction, on the same rows, under the same watermark
lock: they hold exactly the stored events up to the intake events watermark.

What they hold, so that the check reads (`quality.selectors.check_counts`) equal raw counts:
- events per hour of timestamp, in each dimension (type, device, country, currency) per value,
  with the sum and count of their non-null prices;
- `duplicates`: events with an earlier event (in fold order) of the same content key
  (session, type, product, timestamp); summed over the events up to the watermark this is
  events minus distinct keys, what the duplicate check counts;
- `orphans`: purchases with no checkout_start of their session up to the watermark; folding a
  session's first checkout_start takes back its purchases folded before;
- `NullHour`: events with a column null (or "" for text columns), per type and column.

Erasure (rows deleted under the watermark) and a replay storing rows under it go through
`check_rollups_adjust`, which recomputes the touched sessions' share before and after in
Python and upserts the difference (duplicates and orphans never span sessions).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from analytics_site.sql import sql_param, time_bucket
from events.facade import EVENTS_TABLE, events_all
from events.receive_order import ReceivePosition, until_sql
from quality.models import EventHour, NullHour
from quality.selectors.check_counts import NULL_FIELDS, null_sql

EVENT_HOUR_TABLE = EventHour._meta.db_table
NULL_HOUR_TABLE = NullHour._meta.db_table
DIMENSIONS = ("event_type", "device_type", "country", "currency")
KEY = ("dimension", "bucket", "value")
COUNTS = ("events", "duplicates", "orphans", "price_sum", "prices")

_SAME_KEY = (
    "e.session_id = t.session_id AND e.timestamp = t.timestamp AND e.event_type = t.event_type "
    "AND e.product_id = t.product_id"
)
_EARLIER = "(e.txid < t.txid OR (e.txid = t.txid AND e.id < t.id))"


def _execute(sql: str, params: Sequence[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [sql_param(p) for p in params])
        return cursor.fetchall() if cursor.description else []


def _additive(table: str, keys: Sequence[str], values: Sequence[str]) -> str:
    sets = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in values)
    return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"


def _upsert(table: str, keys: Sequence[str], values: Sequence[str], rows: Iterable[tuple]) -> None:
    rows = [row for row in rows if any(row[len(keys) :])]
    if not rows:
        return
    columns = (*keys, *values)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    _execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {placeholders} "
        + _additive(table, keys, values),
        [value for row in rows for value in row],
    )


def check_rollups_fold(
    where: str, params: list[Any], after: ReceivePosition, upper: ReceivePosition
) -> None:
    """Fold the events matching `where` (alias t: the rows in (after, upper]) into the check
    rollups. Every event before `upper` in fold order is committed and visible (ADR 0011), so
    "an earlier event" and "a folded checkout" are decided on committed rows only."""
    hour = time_bucket("t.timestamp", "hour")
    checkout_until, checkout_params = until_sql(upper, "c.")
    _insert_per_dimension(
        f"SELECT {hour} AS bucket, t.event_type, t.device_type, t.country, t.currency, "
        "COUNT(*) AS events, "
        f"SUM(CASE WHEN EXISTS (SELECT 1 FROM {EVENTS_TABLE} e WHERE {_SAME_KEY} AND "
        f"{_EARLIER}) THEN 1 ELSE 0 END) AS duplicates, "
        "SUM(CASE WHEN t.event_type = 'purchase' AND NOT EXISTS (SELECT 1 FROM "
        f"{EVENTS_TABLE} c WHERE c.session_id = t.session_id AND c.event_type = "
        f"'checkout_start' AND {checkout_until}) THEN 1 ELSE 0 END) AS orphans, "
        "COALESCE(SUM(t.price), 0) AS price_sum, COUNT(t.price) AS prices "
        f"FROM {EVENTS_TABLE} t WHERE {where} GROUP BY 1, 2, 3, 4, 5",
        [*checkout_params, *params],
        COUNTS,
    )
    if not after.is_start:
        _orphans_take_back(where, params, after)
    sums = ", ".join(
        f"SUM(CASE WHEN {null_sql(name, 't.')} THEN 1 ELSE 0 END)" for name in NULL_FIELDS
    )
    rows = _execute(
        f"SELECT {hour}, t.event_type, {sums} FROM {EVENTS_TABLE} t WHERE {where} GROUP BY 1, 2",
        params,
    )
    _upsert(
        NULL_HOUR_TABLE,
        ("bucket", "event_type", "field"),
        ("nulls",),
        [
            (_as_datetime(row[0]), row[1], name, count)
            for row in rows
            for name, count in zip(NULL_FIELDS, row[2:], strict=True)
        ],
    )


def _orphans_take_back(where: str, params: list[Any], after: ReceivePosition) -> None:
    """Purchases folded before, whose session gets its first folded checkout_start now."""
    hour = time_bucket("p.timestamp", "hour")
    purchase_until, purchase_params = until_sql(after, "p.")
    checkout_until, checkout_params = until_sql(after, "c.")
    _insert_per_dimension(
        f"SELECT {hour} AS bucket, p.event_type, p.device_type, p.country, p.currency, "
        "0 AS events, 0 AS duplicates, -COUNT(*) AS orphans, 0 AS price_sum, 0 AS prices "
        f"FROM {EVENTS_TABLE} p WHERE p.event_type = 'purchase' AND {purchase_until} "
        f"AND p.session_id IN (SELECT t.session_id FROM {EVENTS_TABLE} t WHERE {where} "
        "AND t.event_type = 'checkout_start') "
        f"AND NOT EXISTS (SELECT 1 FROM {EVENTS_TABLE} c WHERE c.session_id = p.session_id "
        f"AND c.event_type = 'checkout_start' AND {checkout_until}) GROUP BY 1, 2, 3, 4, 5",
        [*purchase_params, *params, *checkout_params],
        ("orphans",),
    )


def _insert_per_dimension(cells_sql: str, params: list[Any], columns: Sequence[str]) -> None:
    """Add per-cell counts (`cells_sql`: bucket, the DIMENSIONS and COUNTS) to each
    dimension's rows, from one evaluation of the cells."""
    unpivot = " UNION ALL ".join(
        f"SELECT c.bucket, '{name}' AS dimension, c.{name} AS value, "
        + ", ".join(f"c.{column}" for column in COUNTS)
        + " FROM cells c"
        for name in DIMENSIONS
    )
    sums = ", ".join(f"SUM(u.{column})" for column in COUNTS)
    _execute(
        f"WITH cells AS ({cells_sql}) INSERT INTO {EVENT_HOUR_TABLE} "
        f"(bucket, dimension, value, {', '.join(COUNTS)}) "
        f"SELECT u.bucket, u.dimension, u.value, {sums} FROM ({unpivot}) u GROUP BY 1, 2, 3 "
        + _additive(EVENT_HOUR_TABLE, KEY, columns),
        params,
    )


def _as_datetime(value: Any) -> dt.datetime:
    """A bucket as read back: a datetime on PostgreSQL, 'YYYY-MM-DD HH:00:00' text on SQLite."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)


_COLUMNS = tuple(
    dict.fromkeys(
        (
            "id",
            "txid",
            "timestamp",
            "event_type",
            "device_type",
            "country",
            "currency",
            "price",
            "session_id",
            "product_id",
            *NULL_FIELDS,
        )
    )
)


def _share(rows: Sequence[dict[str, Any]]) -> tuple[Counter, Counter]:
    """What these rows (whole sessions, up to the watermark) contribute to the rollups:
    (EventHour deltas per cell and name in COUNTS, NullHour counts)."""
    cells: Counter = Counter()
    nulls: Counter = Counter()
    seen: set[tuple] = set()
    checkout_sessions = {row["session_id"] for row in rows if row["event_type"] == "checkout_start"}
    for row in sorted(rows, key=lambda row: (row["txid"], row["id"])):
        hour = row["timestamp"].astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        cell = (hour, *(row[name] for name in DIMENSIONS))
        cells[(*cell, "events")] += 1
        if row["price"] is not None:
            cells[(*cell, "price_sum")] += row["price"]
            cells[(*cell, "prices")] += 1
        key = (row["session_id"], row["event_type"], row["product_id"], row["timestamp"])
        if key in seen:
            cells[(*cell, "duplicates")] += 1
        seen.add(key)
        if row["event_type"] == "purchase" and row["session_id"] not in checkout_sessions:
            cells[(*cell, "orphans")] += 1
        for name in NULL_FIELDS:
            value = row[name]
            if value is None or value == "":
                nulls[(hour, row["event_type"], name)] += 1
    return cells, nulls


def check_rollups_adjust(
    position: ReceivePosition, *, added: Sequence[int] = (), removed: Sequence[int] = ()
) -> None:
    """Keep the rollups equal to raw when rows under the watermark `position` change: `added`
    events were stored under it (already inserted), `removed` ones are about to be deleted.
    Call inside that transaction, holding the intake watermark's row lock."""
    changed = events_all().filter(pk__in=[*added, *removed])
    sessions = {
        session
        for txid, pk, session in changed.values_list("txid", "id", "session_id")
        if position.holds(txid, pk)
    }
    if not sessions:
        return
    rows = [
        row
        for row in events_all().filter(session_id__in=sessions).values(*_COLUMNS)
        if position.holds(row["txid"], row["id"])
    ]
    added_set, removed_set = set(added), set(removed)
    before_cells, before_nulls = _share([row for row in rows if row["id"] not in added_set])
    after_cells, after_nulls = _share([row for row in rows if row["id"] not in removed_set])
    after_cells.subtract(before_cells)
    after_nulls.subtract(before_nulls)
    deltas: dict[tuple, list[int]] = {}
    for (hour, *values, name), delta in after_cells.items():
        for dimension, value in zip(DIMENSIONS, values, strict=True):
            cell = deltas.setdefault((dimension, hour, value), [0] * len(COUNTS))
            cell[COUNTS.index(name)] += delta
    _upsert(
        EVENT_HOUR_TABLE,
        KEY,
        COUNTS,
        [(*key, *counts) for key, counts in sorted(deltas.items())],
    )
    _upsert(
        NULL_HOUR_TABLE,
        ("bucket", "event_type", "field"),
        ("nulls",),
        [(*key, delta) for key, delta in sorted(after_nulls.items())],
    )
