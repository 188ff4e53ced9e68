"""Distinct users and new vs returning users, exact, from roaring bitmaps of user keys.

The rollup part of a period is the union of its `UserBitmap*` rows (one per bucket x device x
country, filtered by selecting rows; a day-bucketed period's whole weeks from the weekly rows);
tail users add to it unless their key is already in that union. A small tail's users and keys
come from its summary (selectors.tail_summary), so a tail correction is a few bitmap operations;
a big tail's are looked up once per snapshot in SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import Min, QuerySet
from django.db.models.expressions import RawSQL
from pyroaring import BitMap

from events.facade import EVENTS_TABLE, events_with_person
from reports.filters import DashboardFilters, whole_weeks
from reports.models.grains import FIRST_SEEN_BITMAP, USER_BITMAP
from reports.selectors import raw_events
from reports.selectors.tail import in_period, memo, micros, rollup_cached, tail
from reports.selectors.tail_summary import (
    Period,
    TailSummary,
    tail_is_empty,
    tail_summary,
    user_keys_lookup,
)
from reports.selectors.user_bitmaps import bitmaps_read

_FIELD_POSITION = {"device_type": 0, "country": 1}


def _period_key(filters: DashboardFilters) -> str:
    return f"{filters.bucket}:{filters.start}:{filters.end}:{filters.device}:{filters.country}"


def _bitmap_rows(rows: QuerySet) -> list[tuple[str, str, BitMap]]:
    return bitmaps_read(rows.values_list("device_type", "country", "users"))


def _active_rows(filters: DashboardFilters) -> list[tuple[str, str, BitMap]]:
    """(device, country, active users) per row of the period, read once per snapshot. A
    day-bucketed period reads its whole weeks from the weekly rows and only the days at either
    end from the daily ones (90 days: 12 weeks and 6 days, not 90 days, x device x country); a
    user in both is simply in two rows of the union."""

    def load() -> list[tuple[str, str, BitMap]]:
        rows = in_period(USER_BITMAP[filters.bucket].objects.all(), filters)
        if filters.bucket == "hour":
            return _bitmap_rows(rows)
        first, last = whole_weeks(filters.start, filters.end)
        if first >= last:
            return _bitmap_rows(rows)
        weeks = replace(filters, start=first, end=last)
        return _bitmap_rows(rows.exclude(bucket__gte=first, bucket__lt=last)) + _bitmap_rows(
            in_period(USER_BITMAP["week"].objects.all(), weeks)
        )

    return memo(f"active_rows:{_period_key(filters)}", load)


def _active(filters: DashboardFilters, field: str | None = None) -> Any:
    """Users active in the period: one bitmap, or {device or country: bitmap}.

    Cached per rollup state like the additive reads: at 90 days a union reads ~1,100 bitmap
    rows (12 weeks and 6 days x device x country; 5,400 daily rows, 3.5 MB, before weekly
    rows), while the unions themselves are a few dense bitmaps (~64 KB each at 500k users), so
    a warm read no longer loads the rows. The total is the union of the per-device unions (4
    bitmaps), so an audience read passes over the rows twice, not three times."""

    def union() -> Any:
        if field is None:
            groups = _active(filters, "device_type")
            return BitMap.union(*groups.values()) if groups else BitMap()
        grouped: dict[str, list[BitMap]] = {}
        for row in _active_rows(filters):
            grouped.setdefault(row[_FIELD_POSITION[field]], []).append(row[2])
        return {key: BitMap.union(*bitmaps) for key, bitmaps in grouped.items()}

    name = f"active_users_by_{field or 'all'}"
    return memo(
        f"active:{field}:{_period_key(filters)}",
        lambda: rollup_cached(name, filters, union, _union_cache_seconds()),
    )


def _union_cache_seconds() -> int:
    """Unions are big for a cache entry (the task's warm caches ~3 MB of them per fold at 10M
    events: 1.2 MB for 90 days, mostly the 15 per-country unions) and useless once the next
    fold moves the watermark: a few fold intervals, not ROLLUP_CACHE_SECONDS, so a 10 s
    schedule keeps ~20 MB of them instead of ~190 MB."""
    return max(60, 3 * getattr(settings, "ROLLUP_INTERVAL_SECONDS", 10))


def _first_seen_in(filters: DashboardFilters) -> BitMap:
    """Users whose first event ever is in the period (device and country do not apply)."""

    def load() -> BitMap:
        rows = bitmaps_read(
            FIRST_SEEN_BITMAP[filters.bucket]
            .objects.filter(bucket__gte=filters.start, bucket__lt=filters.end)
            .values_list("users")
        )
        return BitMap.union(*(bitmap for (bitmap,) in rows)) if rows else BitMap()

    return memo(f"first_seen_in:{filters.bucket}:{filters.start}:{filters.end}", load)


def _first_seen_from(filters: DashboardFilters) -> BitMap:
    """Users whose rolled-up first event is at or after the period's start (a tail user's
    late event may be in the period while its rolled-up first event is after it)."""

    def load() -> BitMap:
        rows = bitmaps_read(
            FIRST_SEEN_BITMAP[filters.bucket]
            .objects.filter(bucket__gte=filters.start)
            .values_list("users")
        )
        return BitMap.union(*(bitmap for (bitmap,) in rows)) if rows else BitMap()

    return memo(f"first_seen_from:{filters.bucket}:{filters.start}", load)


class TailUsers(NamedTuple):
    """The tail's users: earliest tail event (integer microseconds) and rolled-up key (None for
    users the rollup does not know), and who is active in a read's period."""

    first: dict[str, int]
    keys: dict[str, int | None]
    active_in: Callable[[DashboardFilters, str | None], dict[str | None, tuple[BitMap, set[str]]]]


def _tail_users() -> TailUsers:
    summary = tail_summary()
    if summary is not None:
        return TailUsers(
            summary.user_first,
            summary.user_keys(),
            lambda filters, field: _summary_active(summary, filters, field),
        )
    return memo("tail_users", _sql_tail_users)


def _summary_active(
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


def _sql_tail_users() -> TailUsers:
    """A tail too big to summarize: each user's earliest event and key once per snapshot (one
    GROUP BY and one key lookup), and a read's active users from one DISTINCT query."""
    if connection.vendor == "postgresql":  # times as integers: parsing them costs more
        # The table name is the events app's own constant, not input.
        epoch_us = f'(EXTRACT(EPOCH FROM "{EVENTS_TABLE}"."timestamp") * 1000000)::bigint'
        first_us = RawSQL(epoch_us, [])  # noqa: S611
        rows = events_with_person(tail()).values("person").annotate(first=Min(first_us))
        first = dict(rows.order_by().values_list("person", "first"))
    else:
        rows = events_with_person(tail()).values("person").annotate(first=Min("timestamp"))
        first = {
            person: micros(moment)
            for person, moment in rows.order_by().values_list("person", "first")
        }
    keys: dict[str, int | None] = dict.fromkeys(first)
    keys.update(user_keys_lookup(list(first)))

    def active_in(
        filters: DashboardFilters, field: str | None
    ) -> dict[str | None, tuple[BitMap, set[str]]]:
        ids = raw_events.user_ids(raw_events.events_in(filters, tail()), field)
        grouped = {None: ids} if field is None else ids
        return {
            group: (
                BitMap(keys[u] for u in user_ids if keys[u] is not None),
                {u for u in user_ids if keys[u] is None},
            )
            for group, user_ids in grouped.items()
            if user_ids
        }

    return TailUsers(first, keys, active_in)


def users(filters: DashboardFilters, field: str | None = None) -> Any:
    """Distinct users active in the period: a count, or {dimension value: count}. A tail user
    counts unless its key is in the rolled-up set."""
    active = _active(filters, field)
    if tail_is_empty():
        return len(active) if field is None else {k: len(b) for k, b in active.items()}
    groups = _tail_users().active_in(filters, field)
    if field is None:
        keys, unknown = groups.get(None, (BitMap(), set()))
        return len(active) + keys.difference_cardinality(active) + len(unknown)
    counts = {key: len(bitmap) for key, bitmap in active.items()}
    for key, (keys, unknown) in groups.items():
        rolled = active.get(key, BitMap())
        counts[key] = len(rolled) + keys.difference_cardinality(rolled) + len(unknown)
    return counts


def new_vs_returning(filters: DashboardFilters) -> dict[str, int]:
    """Active users of the period whose first event ever is in it (new) or before (returning).

    Rolled up: new = |active ∩ first seen in the period|. With a tail, a user is new when its
    first event ever, min(rolled-up first, tail first), is at or after the start: rolled-up
    users of the period with a tail event before the start become returning; tail users of the
    period not in the rolled-up set are added, new when neither first event is before the
    start; users without a key have only tail events.
    """
    active = _active(filters)
    total = len(active)
    new = active.intersection_cardinality(_first_seen_in(filters)) if total else 0
    if tail_is_empty():
        return {"new": new, "returning": total - new}
    tail_users = _tail_users()
    from_start = _first_seen_from(filters)
    start = micros(filters.start)
    keys, unknown = tail_users.active_in(filters, None).get(None, (BitMap(), set()))
    early = BitMap(
        key
        for user_id, first in tail_users.first.items()
        if first < start and (key := tail_users.keys[user_id]) is not None
    )
    added = keys - active
    total += len(added) + len(unknown)
    new -= (active & from_start).intersection_cardinality(early)
    new += (added & from_start).difference_cardinality(early)
    new += sum(1 for user_id in unknown if tail_users.first[user_id] >= start)
    return {"new": int(new), "returning": int(total - new)}
