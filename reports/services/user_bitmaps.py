# SQL is built from our own table and column names only; values are always bound parameters.
# ruff: noqa: S608
"""Exact distinct users as roaring bitmaps of dense user keys (ADR 0003).

Every user gets a key when the rollup first sees them: `UserFirstSeen.id`, inserted only for
users not yet known (so PostgreSQL's sequence is not spent on known users and keys stay dense).
Two bitmap families hold keys:
- `UserBitmap*`: users active per bucket x device x country, hourly, daily and weekly (UTC
  weeks from Monday; a week's row is the union of its daily rows). Distinct users of a period
  (with any device/country filter) = size of the union of its rows; users per device or
  country = unions per group. A day-bucketed period reads its whole weeks from the weekly rows
  and the days at either end from the daily ones.
- `FirstSeenBitmap*`: users whose first event ever is in the bucket, hourly and daily. New
  users of a period = |active ∩ first seen in the period|.

The fold keeps both exact inside its transaction (the watermark row lock serializes folds):
active keys are OR-ed into their rows; when a batch makes a user's first event earlier (a late
event) or introduces a user, the key moves to (or enters) the first-seen row of its new bucket.
OR and moves are idempotent per batch, and the watermark makes each batch fold once.
Bitmaps are built in Python (pyroaring), so the same code runs on PostgreSQL and SQLite.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import connection
from pyroaring import BitMap

from reports.filters import floor_day, floor_hour, floor_week
from reports.models import UserFirstSeen
from reports.models.grains import FIRST_SEEN_BITMAP, USER_BITMAP
from reports.selectors.user_bitmaps import bitmap_load, bitmaps_read

FLOOR = {"hour": floor_hour, "day": floor_day}
FIRST_SEEN = UserFirstSeen._meta.db_table
BATCH_USERS = "rollup_batch_users"

# A first-seen change: (user key, old first event time or None, new first event time).
Move = tuple[int, dt.datetime | None, dt.datetime]


def bitmap_dump(bitmap: BitMap) -> bytes:
    """Run-optimized, so equal sets serialize to equal bytes whatever their history."""
    bitmap.run_optimize()
    return bitmap.serialize()


def as_utc(value: Any) -> dt.datetime:
    """A datetime from raw SQL: aware on PostgreSQL, naive UTC text on SQLite."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _rows(sql: str, params: list[Any] | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _execute(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


# ---------------------------------------------------------------------------------------------
# Writes (called by reports.services.rollups inside the fold's transaction).


def _bitmaps_read(model, fields: list[str], buckets: list[dt.datetime]) -> dict[tuple, bytes]:
    if connection.vendor != "postgresql":
        rows = model.objects.filter(bucket__in=buckets).values_list(*fields, "users")
        return {tuple(row[:-1]): row[-1] for row in rows}
    columns = ", ".join(fields)
    rows = _rows(
        f"SELECT {columns}, users FROM {model._meta.db_table} WHERE bucket = ANY(%s)", [buckets]
    )
    return {(as_utc(row[0]), *row[1:-1]): row[-1] for row in rows}


def _bitmaps_write(model, fields: list[str], rows: list[tuple]) -> None:
    """Upsert (row key..., serialized bitmap) rows: one statement on PostgreSQL (arrays unnested;
    building model instances costs more than the write for tens of thousands of rows)."""
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip([*fields, "users"], row, strict=True))) for row in rows]
        model.objects.bulk_create(
            objects, update_conflicts=True, unique_fields=fields, update_fields=["users"]
        )
        return
    columns = ", ".join(fields)
    types = ["timestamptz[]", *(["text[]"] * (len(fields) - 1)), "bytea[]"]
    arrays = ", ".join(f"%s::{kind}" for kind in types)
    _execute(
        f"INSERT INTO {model._meta.db_table} ({columns}, users) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({columns}) DO UPDATE SET users = excluded.users",
        [list(column) for column in zip(*rows, strict=True)],
    )


def bitmaps_merge(model, changes: dict[tuple, tuple[BitMap, BitMap]]) -> None:
    """Apply {row key: (keys to add, keys to remove)} to a bitmap table in one read and one
    upsert. The row key is (bucket,) or (bucket, device_type, country)."""
    if not changes:
        return
    fields = ["bucket", "device_type", "country"] if hasattr(model, "country") else ["bucket"]
    current = _bitmaps_read(model, fields, sorted({key[0] for key in changes}))
    rows = []
    for key, (added, removed) in changes.items():
        data = current.get(key)
        if data is None:
            if not added:
                continue
            bitmap = added
        else:
            bitmap = bitmap_load(data)
            if removed:
                bitmap -= removed
            bitmap |= added
        rows.append((*key, bitmap_dump(bitmap)))
    _bitmaps_write(model, fields, rows)


def _first_seen_bitmaps_move(moves: Iterable[Move]) -> None:
    for grain, model in FIRST_SEEN_BITMAP.items():
        floor = FLOOR[grain]
        changes: dict[tuple, tuple[BitMap, BitMap]] = defaultdict(lambda: (BitMap(), BitMap()))
        for key, old, new in moves:
            new_bucket = floor(new)
            if old is not None:
                old_bucket = floor(old)
                if old_bucket == new_bucket:
                    continue
                changes[(old_bucket,)][1].add(key)
            changes[(new_bucket,)][0].add(key)
        bitmaps_merge(model, changes)


def _batch_users(source: str) -> None:
    _execute(f"DROP TABLE IF EXISTS {BATCH_USERS}")
    _execute(
        f"CREATE TEMPORARY TABLE {BATCH_USERS} AS "
        f"SELECT user_id, MIN(ts) AS first FROM {source} GROUP BY user_id"
    )


def _new_users_insert() -> list[Move]:
    """Keys for the batch's unknown users, in first-seen order (denser recent bitmaps)."""
    rows = _rows(
        f"INSERT INTO {FIRST_SEEN} (user_id, first_seen) SELECT b.user_id, b.first "
        f"FROM {BATCH_USERS} b WHERE NOT EXISTS "
        f"(SELECT 1 FROM {FIRST_SEEN} f WHERE f.user_id = b.user_id) "
        "ORDER BY b.first, b.user_id RETURNING id, first_seen"
    )
    return [(key, None, as_utc(first)) for key, first in rows]


def first_seen_fold(source: str) -> None:
    """Fold a batch into first-seen rows and bitmaps: new users get keys; known users whose
    first event the batch makes earlier move to the earlier bucket."""
    _batch_users(source)
    moved = [
        (key, as_utc(old), as_utc(new))
        for key, old, new in _rows(
            f"SELECT f.id, f.first_seen, b.first FROM {BATCH_USERS} b "
            f"JOIN {FIRST_SEEN} f ON f.user_id = b.user_id WHERE b.first < f.first_seen"
        )
    ]
    if moved:
        _execute(
            f"UPDATE {FIRST_SEEN} SET first_seen = b.first FROM {BATCH_USERS} b "
            f"WHERE b.user_id = {FIRST_SEEN}.user_id AND b.first < {FIRST_SEEN}.first_seen"
        )
    _first_seen_bitmaps_move(moved + _new_users_insert())
    _execute(f"DROP TABLE IF EXISTS {BATCH_USERS}")


def first_seen_recompute(source: str, since: dt.datetime) -> None:
    """Partial rebuild: `source` holds every rolled-up event of the touched users, and the
    first-seen bitmap rows from `since` on were deleted. Each touched user keeps its key; its
    first-seen time is recomputed and its key put back in the right bucket."""
    _batch_users(source)
    rows = _rows(
        f"SELECT f.id, f.first_seen, b.first FROM {BATCH_USERS} b "
        f"JOIN {FIRST_SEEN} f ON f.user_id = b.user_id"
    )
    _execute(
        f"UPDATE {FIRST_SEEN} SET first_seen = b.first FROM {BATCH_USERS} b "
        f"WHERE b.user_id = {FIRST_SEEN}.user_id AND b.first <> {FIRST_SEEN}.first_seen"
    )
    moves: list[Move] = []
    for key, old, new in rows:
        old, new = as_utc(old), as_utc(new)
        moves.append((key, old if old < since else None, new))  # rows from `since` are gone
    _first_seen_bitmaps_move(moves + _new_users_insert())
    _execute(f"DROP TABLE IF EXISTS {BATCH_USERS}")


def active_fold(source: str) -> None:
    """OR the batch's (hour, device, country, user key) into hourly, daily and weekly user
    bitmaps. Every user of the source must have a key (first_seen_fold runs first)."""
    keys = "array_agg(f.id)" if connection.vendor == "postgresql" else "group_concat(f.id)"
    rows = _rows(
        f"SELECT s.hour, s.device_type, s.country, {keys} FROM {source} s "
        f"JOIN {FIRST_SEEN} f ON f.user_id = s.user_id GROUP BY s.hour, s.device_type, s.country"
    )
    hours: dict[tuple, tuple[BitMap, BitMap]] = {}
    days: dict[tuple, tuple[BitMap, BitMap]] = defaultdict(lambda: (BitMap(), BitMap()))
    for hour, device, country, members in rows:
        if isinstance(members, str):
            members = map(int, members.split(","))
        bitmap = BitMap(members)
        hour = as_utc(hour)
        hours[(hour, device, country)] = (bitmap, BitMap())
        days[(floor_day(hour), device, country)][0].update(bitmap)
    weeks: dict[tuple, tuple[BitMap, BitMap]] = defaultdict(lambda: (BitMap(), BitMap()))
    for (day, device, country), (bitmap, _) in days.items():
        weeks[(floor_week(day), device, country)][0].update(bitmap)
    bitmaps_merge(USER_BITMAP["hour"], hours)
    bitmaps_merge(USER_BITMAP["day"], days)
    bitmaps_merge(USER_BITMAP["week"], weeks)


def active_week_refill(week: dt.datetime, since: dt.datetime) -> None:
    """Partial rebuild from `since`, a day inside `week` (its Monday): the weekly rows from
    `week` on were deleted and the daily rows from `since` on too. Put back the week's days
    before `since` (kept daily rows, device x country unions); refolding the events from
    `since` then ORs in the rest of the week."""
    rows = bitmaps_read(
        USER_BITMAP["day"]
        .objects.filter(bucket__gte=week, bucket__lt=since)
        .values_list("device_type", "country", "users")
    )
    changes: dict[tuple, tuple[BitMap, BitMap]] = defaultdict(lambda: (BitMap(), BitMap()))
    for device, country, bitmap in rows:
        changes[(week, device, country)][0].update(bitmap)
    bitmaps_merge(USER_BITMAP["week"], changes)
