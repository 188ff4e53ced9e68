"""Distinct users and new vs returning users, exact, from roaring bitmaps of user keys.

The rollup part of a period is the union of its `UserBitmap*` rows (one per bucket x device x
country, filtered by selecting rows); tail users add to it unless their key is already in that
union. One key lookup per snapshot serves every tail correction of a read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyroaring import BitMap

from reports.filters import DashboardFilters
from reports.models import UserFirstSeen
from reports.readers.tail import (
    any_of,
    datetimes_fast,
    in_period,
    memo,
    tail_first_seen,
    tail_is_empty,
    tail_user_ids,
)
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


def _tail_user_keys() -> dict[str, tuple[int, dt.datetime]]:
    """{user_id: (key, rolled-up first seen)} for the tail's users the rollup knows."""

    def load() -> dict[str, tuple[int, dt.datetime]]:
        tail_users = memo("first_seen", tail_first_seen)
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
    tail_users = tail_user_ids(filters, field) if not tail_is_empty() else None
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
    if tail_is_empty():
        return {"new": new, "returning": total - new}
    tail_first = memo("first_seen", tail_first_seen)
    tail_active = tail_user_ids(filters, None)
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
