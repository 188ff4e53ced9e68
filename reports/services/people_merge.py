# SQL is built from our own table and column names only; values are always bound parameters.
# ruff: noqa: S608
"""Re-keying the user rollups when two people become one (an identify or alias, ADR 0015).

Distinct users count people: every fold keys an event by its person (`person_key_sql`). When
ids merge into another person, the rollups already folded hold the merged person under its own
key; `rollups_people_merge` (a listener of `events.services`, called in the linking
transaction) gives those counts to the surviving person, under the rollup watermark's row lock,
so no fold interleaves:

- the person's folded sessions name the surviving id (a session's user is its first event's);
- only the merged person is known to the rollups: its `UserFirstSeen` row is renamed (its key,
  and every bitmap holding it, now stand for the surviving person);
- both are known: the merged key leaves every active cell of the person's folded events and
  the surviving key enters it; the first-seen time is the earlier of the two, and the merged
  key's row goes.

The generation changes in every case: the readers' caches and tail summaries keyed by the
rollup state hold person keys of tail events that the new link changes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from django.db import connection
from pyroaring import BitMap

from analytics_site.sql import set_local_utc
from events.facade import identity_in_sql
from events.receive_order import START, ReceivePosition, range_sql
from events.services import person_ids
from reports.models import RollupWatermark, SessionRollup, UserFirstSeen
from reports.models.grains import FIRST_SEEN_BITMAP, USER_BITMAP
from reports.selectors.watermark import WATERMARK_NAME
from reports.services.rollup_erasure import FLOORS
from reports.services.rollup_folds import source_create, sources_drop
from reports.services.user_bitmaps import as_utc, bitmaps_merge

MERGE = "rollup_people_merge"

Changes = dict[tuple, tuple[BitMap, BitMap]]


def _changes() -> Changes:
    return defaultdict(lambda: (BitMap(), BitMap()))


def _folded_events_source(into: str, below: str, params: list) -> None:
    """The folded events of the (merged) person, by any of their ids, into a temp table."""
    ids = person_ids([into])
    placeholders = ", ".join(["%s"] * len(ids))
    source_create(MERGE, f"{below} AND {identity_in_sql(placeholders)}", [*params, *ids, *ids])


def _sessions_rekey(merged: str, into: str) -> None:
    """A session's user is its first event's person: the person's sessions name the survivor."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SessionRollup._meta.db_table} SET user_id = %s WHERE user_id = %s "
            f"AND session_id IN (SELECT session_id FROM {MERGE})",
            [into, merged],
        )


def _active_cells_rekey(old_key: int, new_key: int) -> None:
    """In every cell of the person's folded events: out with the old key, in with the new one.
    Cells holding only the new key are unchanged; every cell of the old key is one of these
    events' (until retention removes raw events, ADR 0007)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT hour, device_type, country FROM {MERGE}")
        cells = cursor.fetchall()
    for grain, model in USER_BITMAP.items():
        floor = FLOORS[grain]
        changes = _changes()
        for hour, device, country in cells:
            added, removed = changes[(floor(as_utc(hour)), device, country)]
            added.add(new_key)
            removed.add(old_key)
        bitmaps_merge(model, changes)


def _first_seen_rekey(old: UserFirstSeen, new: UserFirstSeen) -> None:
    """The surviving key is first seen at the earlier of the two times; the old key leaves."""
    earlier = min(old.first_seen, new.first_seen)
    for grain, model in FIRST_SEEN_BITMAP.items():
        floor = FLOORS[grain]
        changes = _changes()
        changes[(floor(old.first_seen),)][1].add(old.id)
        if earlier < new.first_seen and floor(earlier) != floor(new.first_seen):
            changes[(floor(new.first_seen),)][1].add(new.id)
            changes[(floor(earlier),)][0].add(new.id)
        bitmaps_merge(model, changes)
    UserFirstSeen.objects.filter(pk=old.pk).delete()
    if earlier < new.first_seen:
        UserFirstSeen.objects.filter(pk=new.pk).update(first_seen=earlier)


def rollups_people_merge(pairs: Sequence[tuple[str, str]]) -> None:
    """Listener of `events.services.person_merge_listener_register`: `pairs` are (merged id,
    surviving id). Idempotent: a merge already applied finds no row of the merged id."""
    RollupWatermark.objects.get_or_create(name=WATERMARK_NAME)
    mark = RollupWatermark.objects.select_for_update().get(name=WATERMARK_NAME)
    position = ReceivePosition(mark.txid, mark.event_pk)
    set_local_utc()
    below, params = range_sql(START, position)
    for merged, into in pairs:
        rows = {
            row.user_id: row
            for row in UserFirstSeen.objects.filter(user_id__in=[merged, into]).order_by()
        }
        old, new = rows.get(merged), rows.get(into)
        if old is None:
            continue
        _folded_events_source(into, below, params)
        _sessions_rekey(merged, into)
        if new is None:
            UserFirstSeen.objects.filter(pk=old.pk).update(user_id=into)
        else:
            _active_cells_rekey(old.id, new.id)
            _first_seen_rekey(old, new)
        sources_drop(MERGE)
    mark.generation = uuid.uuid4()  # the people behind the same watermark changed
    mark.save(update_fields=["generation", "updated_at"])
