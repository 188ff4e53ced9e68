"""Distinct users and new vs returning users, exact, from roaring bitmaps of user keys.

The rollup part of a period is the union of its `UserBitmap*` rows (one per bucket x device x
country, filtered by selecting rows); tail users add to it unless their key is already in that
union. A small tail's users and keys come from its summary (readers.tail_summary), so a tail
correction is a few bitmap operations; a big tail's are looked up once per snapshot in SQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyroaring import BitMap

from reports import raw
from reports.filters import DashboardFilters
from reports.models import UserFirstSeen
from reports.readers.tail import any_of, datetimes_fast, in_period, memo, micros, tail
from reports.readers.tail_summary import Period, TailSummary, tail_summary
from reports.user_bitmaps import FIRST_SEEN_BITMAP, USER_BITMAP, bitmap_load

_FIELD_POSITION = {"device_type": 0, "country": 1}


def _period_key(filters: DashboardFilters) -> str:
    return f"{filters.bucket}:{filters.start}:{filters.end}:{filters.device}:{filters.country}"


def _active_rows(filters: DashboardFilters) -> list[tuple[str, str, BitMap]]:
    """(device, country, active users) per row of the period, read once per snapshot."""

    def load() -> list[tuple[str, str, BitMap]]:
        rows = in_period(USER_BITMAP[filters.bucket].objects.all(), filters).values_list(
            "device_type", "country", "users"
        )
        return [(device, country, bitmap_load(data)) for device, country, data in rows]

    return memo(f"active_rows:{_period_key(filters)}", load)


def _active(filters: DashboardFilters, field: str | None = None) -> Any:
    """Users active in the period: one bitmap, or {device or country: bitmap}."""

    def union() -> Any:
        rows = _active_rows(filters)
        if field is None:
            return BitMap.union(*(bitmap for _, _, bitmap in rows)) if rows else BitMap()
        groups: dict[str, list[BitMap]] = {}
        for row in rows:
            groups.setdefault(row[_FIELD_POSITION[field]], []).append(row[2])
        return {key: BitMap.union(*bitmaps) for key, bitmaps in groups.items()}

    return memo(f"active:{field}:{_period_key(filters)}", union)


def _first_seen_in(filters: DashboardFilters) -> BitMap:
    """Users whose first event ever is in the period (device and country do not apply)."""

    def load() -> BitMap:
        rows = (
            FIRST_SEEN_BITMAP[filters.bucket]
            .objects.filter(bucket__gte=filters.start, bucket__lt=filters.end)
            .values_list("users", flat=True)
        )
        return BitMap.union(*(bitmap_load(data) for data in rows)) if rows else BitMap()

    return memo(f"first_seen_in:{filters.bucket}:{filters.start}:{filters.end}", load)


def _first_seen_from(filters: DashboardFilters) -> BitMap:
    """Users whose rolled-up first event is at or after the period's start (a tail user's
    late event may be in the period while its rolled-up first event is after it)."""

    def load() -> BitMap:
        rows = (
            FIRST_SEEN_BITMAP[filters.bucket]
            .objects.filter(bucket__gte=filters.start)
            .values_list("users", flat=True)
        )
        return BitMap.union(*(bitmap_load(data) for data in rows)) if rows else BitMap()

    return memo(f"first_seen_from:{filters.bucket}:{filters.start}", load)


def _summary_users(
    summary: TailSummary, filters: DashboardFilters, field: str | None
) -> dict[str | None, tuple[BitMap, set[str]]]:
    """Tail users active in the period: {None or device/country: (keys, ids without a key)}."""
    groups: dict[str | None, tuple[BitMap, set[str]]] = {}
    period = Period(filters)
    for (hour, device, country), (keys, unknown) in summary.user_cell_keys().items():
        if not period.matches(hour, device, country):
            continue
        group = None if field is None else device if field == "device_type" else country
        if group not in groups:
            groups[group] = (BitMap(), set())
        groups[group][0].update(keys)
        groups[group][1].update(unknown)
    return groups


# Big tails (more than ROLLUP_TAIL_IN_MEMORY_MAX events): user ids and keys from SQL.


def _sql_tail_user_ids(filters: DashboardFilters, field: str | None) -> Any:
    return raw.user_ids(raw.events_in(filters, tail()), field)


def _sql_tail_first_seen() -> dict[str, dt.datetime]:
    def load() -> dict[str, dt.datetime]:
        rows = tail().values("user_id").annotate(first=raw.Min("timestamp")).order_by()
        return {row["user_id"]: row["first"] for row in rows}

    return memo("first_seen", load)


def _tail_user_keys() -> dict[str, tuple[int, dt.datetime]]:
    """{user_id: (key, rolled-up first seen)} for the tail's users the rollup knows."""

    def load() -> dict[str, tuple[int, dt.datetime]]:
        tail_users = _sql_tail_first_seen()
        if not tail_users:
            return {}
        known = any_of(UserFirstSeen.objects.all(), "user_id", tail_users)
        rows = datetimes_fast(known, "user_id", "id", "first_seen")
        return {user_id: (key, first) for user_id, key, first in rows}

    return memo("tail_user_keys", load)


def _unseen(user_ids: set[str], active: BitMap, keys: dict[str, tuple[int, dt.datetime]]) -> int:
    """How many of the tail's users are not in the rolled-up active set."""
    return sum(1 for user_id in user_ids if user_id not in keys or keys[user_id][0] not in active)


def users(filters: DashboardFilters, field: str | None = None) -> Any:
    """Distinct users active in the period: a count, or {dimension value: count}."""
    active = _active(filters, field)
    summary = tail_summary()
    if summary is not None:
        groups = _summary_users(summary, filters, field)
        if field is None:
            keys, unknown = groups.get(None, (BitMap(), set()))
            return len(active) + keys.difference_cardinality(active) + len(unknown)
        counts = {key: len(bitmap) for key, bitmap in active.items()}
        for key, (keys, unknown) in groups.items():
            rolled = active.get(key, BitMap())
            counts[key] = len(rolled) + keys.difference_cardinality(rolled) + len(unknown)
        return counts
    tail_users = _sql_tail_user_ids(filters, field)
    if field is None:
        count = len(active)
        if tail_users:
            count += _unseen(tail_users, active, _tail_user_keys())
        return count
    counts = {key: len(bitmap) for key, bitmap in active.items()}
    if tail_users:
        keys = _tail_user_keys()
        for key, ids in tail_users.items():
            counts[key] = counts.get(key, 0) + _unseen(ids, active.get(key, BitMap()), keys)
    return counts


def new_vs_returning(filters: DashboardFilters) -> dict[str, int]:
    """Active users of the period whose first event ever is in it (new) or before (returning).

    Rolled up: new = |active ∩ first seen in the period|. A tail user's rolled-up class is
    undone and the merged one (earliest of rolled-up and tail first events) counted instead.
    """
    active = _active(filters)
    total = len(active)
    new = active.intersection_cardinality(_first_seen_in(filters)) if total else 0
    summary = tail_summary()
    if summary is not None:
        if summary.count:
            total, new = _summary_new_vs_returning(summary, filters, active, total, new)
        return {"new": int(new), "returning": int(total - new)}
    tail_first = _sql_tail_first_seen()
    tail_active = _sql_tail_user_ids(filters, None)
    keys = _tail_user_keys()
    for user_id, first in tail_first.items():
        key, rolled_first = keys.get(user_id, (None, None))
        rolled_active = key is not None and key in active
        if rolled_active:  # undo its rolled-up classification
            total -= 1
            new -= rolled_first >= filters.start
        if rolled_active or user_id in tail_active:
            merged = first if rolled_first is None else min(first, rolled_first)
            total += 1
            new += merged >= filters.start
    return {"new": int(new), "returning": int(total - new)}


def _summary_new_vs_returning(
    summary: TailSummary, filters: DashboardFilters, active: BitMap, total: int, new: int
) -> tuple[int, int]:
    """Rolled-up (total, new) corrected for the tail, with bitmaps of keys.

    A user is new when its first event ever, min(rolled-up first, tail first), is at or after
    the start. Rolled-up users of the period that have a tail event before the start become
    returning; tail users of the period not in the rolled-up set are added, new when neither
    first event is before the start; users without a key have only tail events.
    """
    from_start = _first_seen_from(filters)
    start = micros(filters.start)
    keys, unknown = _summary_users(summary, filters, None).get(None, (BitMap(), set()))
    early = BitMap(
        key
        for user_id, first in summary.user_first.items()
        if first < start and (key := summary.user_keys[user_id]) is not None
    )
    added = keys - active
    total += len(added) + len(unknown)
    new -= (active & from_start).intersection_cardinality(early)
    new += (added & from_start).difference_cardinality(early)
    new += sum(1 for user_id in unknown if summary.user_first[user_id] >= start)
    return total, new
