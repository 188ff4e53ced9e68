# SQL is built from our own table and column names only; values are always bound parameters.
# ruff: noqa: S608
"""Taking a person's events out of the rollups exactly (an erasure, ADR 0007).

Called by `governance` for each batch of a person's events, in the batch's transaction:
`rollups_forget_begin(pks)` before the events are deleted, `rollups_forget_finish(...)` after.
Both run under the rollup watermark's row lock (taken by `begin`, held until commit), so no fold
interleaves. Only events under the watermark were ever folded; the others are raw tail, and
deleting them is enough.

- Additive tables (event and product metrics and totals): the batch's events are subtracted
  (`metrics_fold` with sign "-"), and rows left at zero events are deleted, as a rebuild would
  never have made them.
- Sessions: the touched sessions' rows leave the session metrics and are deleted, then are
  folded again from their remaining events (a session may hold other people's events).
- User bitmaps: the person's key leaves every active cell (hour, day, week x device x country)
  where none of their remaining folded events is; their first-seen time is recomputed from what
  remains, and with nothing left their `UserFirstSeen` row (the only link from key to id) goes.

The result equals a rebuild from the remaining raw events (tests/data_quality/test_erasure*).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from pyroaring import BitMap

from analytics_site.sql import set_local_utc, sql_execute, time_bucket
from events.facade import identity_in_sql
from events.receive_order import START, ReceivePosition, range_sql
from reports.filters import floor_day, floor_hour, floor_week
from reports.models import RollupWatermark, SessionRollup, UserFirstSeen
from reports.models.grains import (
    EVENT_METRIC,
    EVENT_TOTAL,
    FIRST_SEEN_BITMAP,
    GRAINS,
    PRODUCT_METRIC,
    PRODUCT_TOTAL,
    PRODUCT_WEEK_BY,
    USER_BITMAP,
)
from reports.selectors.watermark import WATERMARK_NAME
from reports.services.rollup_folds import (
    metrics_fold,
    session_metrics_delta,
    sessions_fold,
    source_create,
    sources_drop,
)
from reports.services.user_bitmaps import as_utc, bitmaps_merge

FORGET = "rollup_forget"
FORGET_SESSIONS = "rollup_forget_sessions"
FORGET_USERS = "rollup_forget_users"
FLOORS = {"hour": floor_hour, "day": floor_day, "week": lambda hour: floor_week(floor_day(hour))}


@dataclass(frozen=True)
class RollupForget:
    """What `rollups_forget_begin` took out: how many of the batch's events the rollups held,
    and the watermark they were held under."""

    folded: int
    position: ReceivePosition


def _table(model) -> str:
    return model._meta.db_table


def _rows(sql: str, params: Sequence = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def _emptied_rows_delete(source: str) -> None:
    """Delete additive rows the subtraction left at zero events, in the source's buckets."""
    for grain in GRAINS:
        for model in (EVENT_METRIC[grain], EVENT_TOTAL[grain]):
            sql_execute(
                f"DELETE FROM {_table(model)} WHERE events = 0 "
                f"AND bucket IN (SELECT {grain} FROM {source})"
            )
        for model in (PRODUCT_METRIC[grain], PRODUCT_TOTAL[grain]):
            sql_execute(
                f"DELETE FROM {_table(model)} WHERE events = 0 "
                f"AND bucket IN (SELECT {grain} FROM {source})"
            )
    week = time_bucket("day", "week")
    for model in (PRODUCT_TOTAL["week"], *PRODUCT_WEEK_BY.values()):
        sql_execute(
            f"DELETE FROM {_table(model)} WHERE events = 0 "
            f"AND bucket IN (SELECT {week} FROM {source})"
        )


def rollups_forget_begin(event_pks: Sequence[int]) -> RollupForget:
    """Take the folded ones of `event_pks` out of the additive rollups and sessions. Call in
    the erasure batch's transaction before deleting the events; it locks the watermark row."""
    RollupWatermark.objects.get_or_create(name=WATERMARK_NAME)
    mark = RollupWatermark.objects.select_for_update().get(name=WATERMARK_NAME)
    position = ReceivePosition(mark.txid, mark.event_pk)
    if position.is_start or not event_pks:
        return RollupForget(0, position)
    set_local_utc()
    below, params = range_sql(START, position)
    ids = ", ".join(["%s"] * len(event_pks))
    folded = source_create(FORGET, f"{below} AND id IN ({ids})", [*params, *event_pks])
    if folded:
        metrics_fold(FORGET, "-")
        _emptied_rows_delete(FORGET)
        touched = f"session_id IN (SELECT session_id FROM {FORGET})"
        session_metrics_delta("-", touched)
        sql_execute(f"DELETE FROM {_table(SessionRollup)} WHERE {touched}")
        mark.events_rolled_up -= folded
        mark.generation = uuid.uuid4()  # contents change under the same watermark
        mark.save(update_fields=["events_rolled_up", "generation", "updated_at"])
    return RollupForget(folded, position)


def rollups_forget_finish(forget: RollupForget, user_ids: Sequence[str]) -> int:
    """After the batch's events are deleted: fold the touched sessions again from what remains,
    and take the person's user keys out of the bitmaps where nothing of theirs remains.
    Returns how many user keys were forgotten (their `UserFirstSeen` rows deleted)."""
    if forget.position.is_start:
        return 0
    set_local_utc()
    below, params = range_sql(START, forget.position)
    if forget.folded:
        touched = f"session_id IN (SELECT session_id FROM {FORGET})"
        source_create(FORGET_SESSIONS, f"{below} AND {touched}", params)
        sessions_fold(FORGET_SESSIONS)
    forgotten = _user_keys_forget(forget, user_ids, below, params)
    sources_drop(FORGET, FORGET_SESSIONS, FORGET_USERS)
    return forgotten


def _cells(source: str, keys: dict[str, int]) -> set[tuple[int, dt.datetime, str, str]]:
    rows = _rows(f"SELECT DISTINCT user_id, hour, device_type, country FROM {source}")
    return {(keys[user], as_utc(hour), device, country) for user, hour, device, country in rows}


def _user_keys_forget(
    forget: RollupForget, user_ids: Sequence[str], below: str, params: list
) -> int:
    known = dict(
        UserFirstSeen.objects.filter(user_id__in=list(user_ids)).values_list("user_id", "id")
    )
    if not known:
        return 0
    # The remaining folded events of these people: those of any of their ids (ADR 0015).
    names = ", ".join(["%s"] * len(user_ids))
    where = f"{below} AND {identity_in_sql(names)}"
    source_create(FORGET_USERS, where, [*params, *user_ids, *user_ids])
    gone = _cells(FORGET, known) if forget.folded else set()
    kept = _cells(FORGET_USERS, known)
    for grain, model in USER_BITMAP.items():
        floor = FLOORS[grain]
        kept_cells = {(key, floor(hour), device, country) for key, hour, device, country in kept}
        changes: dict[tuple, tuple[BitMap, BitMap]] = defaultdict(lambda: (BitMap(), BitMap()))
        for key, hour, device, country in gone:
            if (key, floor(hour), device, country) not in kept_cells:
                changes[(floor(hour), device, country)][1].add(key)
        bitmaps_merge(model, changes)
    firsts = dict(_rows(f"SELECT user_id, MIN(ts) FROM {FORGET_USERS} GROUP BY user_id"))
    stored = UserFirstSeen.objects.filter(id__in=list(known.values()))
    moves = []
    for user_id, key, first_seen in stored.values_list("user_id", "id", "first_seen"):
        new = as_utc(firsts[user_id]) if user_id in firsts else None
        if new != first_seen:
            moves.append((key, first_seen, new))
    _first_seen_moves(moves)
    gone_users = [user_id for user_id in known if user_id not in firsts]
    UserFirstSeen.objects.filter(user_id__in=gone_users).delete()
    for key, _, new in moves:
        if new is not None:
            UserFirstSeen.objects.filter(id=key).update(first_seen=new)
    return len(gone_users)


def _first_seen_moves(moves: list[tuple[int, dt.datetime, dt.datetime | None]]) -> None:
    """Move keys between first-seen buckets: out of the old one, into the new one if any (an
    erasure only ever makes a first event later, or removes it)."""
    for grain, model in FIRST_SEEN_BITMAP.items():
        floor = FLOORS[grain]
        changes: dict[tuple, tuple[BitMap, BitMap]] = defaultdict(lambda: (BitMap(), BitMap()))
        for key, old, new in moves:
            if new is not None and floor(new) == floor(old):
                continue
            changes[(floor(old),)][1].add(key)
            if new is not None:
                changes[(floor(new),)][0].add(key)
        bitmaps_merge(model, changes)
