# SQL is built from our own table names only; values are always bound parameters.
# ruff: noqa: S608
"""Removing stored and rejected events: a person's rows (erasure) and old rows (retention).

These only delete raw rows (and empty an erased person's lines of the original messages stored
once per request, ADR 0041). Whoever calls them keeps the rollups right: `governance` corrects
the rollups for an erasure in the same transaction, and retention deletes only rows that every
rollup already holds (under the watermarks), so dashboards keep their history.
Every delete is bounded (a batch of ids), so no transaction holds many row locks for long.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from django.db import connection
from django.db.models import Q

from events.models import Event, OriginalBatch, RejectedEvent
from events.receive_order import ReceivePosition, after_q

EVENTS_TABLE = Event._meta.db_table
ORIGINAL_BATCHES_TABLE = OriginalBatch._meta.db_table


def _delete_ids(table: str, pks: Sequence[int]) -> int:
    if not pks:
        return 0
    placeholders = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id IN ({placeholders})", list(pks))
        return cursor.rowcount


# Erasure's delete: the events go, and so do their lines in the OriginalBatch rows they share
# with other events (ADR 0041), emptied in the same statement. A concurrent erasure touching
# the same batch row waits for its row lock, then empties its lines in the updated text.
_EVENTS_ERASE_SQL = f"""
WITH gone AS (
    DELETE FROM {EVENTS_TABLE} WHERE id = ANY(%s) RETURNING original_batch_id, original_line
), lines AS (
    SELECT original_batch_id AS id, array_agg(original_line) AS numbers FROM gone
    WHERE original_batch_id IS NOT NULL GROUP BY original_batch_id
), emptied AS (
    UPDATE {ORIGINAL_BATCHES_TABLE} b SET messages = COALESCE((
        SELECT string_agg(CASE WHEN u.n = ANY(lines.numbers) THEN '' ELSE u.line END, E'\\n'
                          ORDER BY u.n)
        FROM unnest(string_to_array(b.messages, E'\\n')) WITH ORDINALITY AS u(line, n)), '')
    FROM lines WHERE b.id = lines.id RETURNING b.id
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM emptied)
"""


def events_delete(pks: Sequence[int]) -> int:
    """Delete stored events by id, with their originals (erasure). Returns how many went (ids
    already gone count 0)."""
    if not pks:
        return 0
    if connection.vendor != "postgresql":
        return _delete_ids(EVENTS_TABLE, pks)
    with connection.cursor() as cursor:
        cursor.execute(_EVENTS_ERASE_SQL, [list(pks)])
        return cursor.fetchone()[0]


def rejected_events_delete(pks: Sequence[int]) -> int:
    """Delete rejected (quarantined or replayed) events by id. Returns how many went."""
    return _delete_ids(RejectedEvent._meta.db_table, pks)


def _payload_names_user(raw: str, truncated: bool, ids: set[str]) -> bool:
    """Whether a rejected payload belongs to one of `ids`: its user_id (or anonymous_id) when it
    parses as an object; otherwise (truncated or not JSON) any JSON string equal to an id."""
    if not truncated:
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            return any(payload.get(name) in ids for name in ("user_id", "anonymous_id"))
        if isinstance(payload, list):
            return any(isinstance(item, dict) and item.get("user_id") in ids for item in payload)
    return any(json.dumps(user_id) in raw for user_id in ids)


def rejected_pks_of_users(
    user_ids: Sequence[str], *, after_pk: int = 0, limit: int = 1000
) -> tuple[list[int], int | None]:
    """Rejected rows whose payload names one of `user_ids`, scanning ids after `after_pk`.

    Returns (matching ids, last id scanned, or None when the scan is done). The payload is text
    (it may not be JSON), so candidates are found by substring and confirmed in Python.
    """
    ids = set(user_ids)
    matches = RejectedEvent.objects.none()
    for user_id in ids:
        matches = matches | RejectedEvent.objects.filter(raw_payload__contains=user_id)
    rows = list(
        matches.filter(pk__gt=after_pk)
        .order_by("pk")
        .values_list("pk", "raw_payload", "raw_truncated")[:limit]
    )
    if not rows:
        return [], None
    found = [pk for pk, raw, truncated in rows if _payload_names_user(raw, truncated, ids)]
    return found, rows[-1][0]


def event_pks_of_users(user_ids: Sequence[str], *, limit: int = 1000) -> list[int]:
    """Ids of stored events whose own id (user id, else anonymous id: the id the event counts
    under, ADR 0015) is one of `user_ids` (indexes `event_user_idx`, `event_anon_ts_idx`),
    oldest id first, locked until the caller's transaction ends (a concurrent retention delete
    waits for it). Empty ids match nothing. An event with another user id is that user's, even
    when it also carries one of these anonymous ids: the rollups count it as theirs."""
    ids = [value for value in user_ids if value]
    anonymous = Q(user_id="", anonymous_id__in=ids) & ~Q(anonymous_id="")  # the partial index
    return list(
        Event.objects.select_for_update()
        .filter(Q(user_id__in=ids) | anonymous)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def _held_by_all(held_by: Sequence[ReceivePosition]) -> Q | None:
    """Rows at or before every position (None when some position holds nothing yet)."""
    if any(position.is_start for position in held_by):
        return None
    held = Q()
    for position in held_by:
        held &= ~after_q(position)
    return held


def events_delete_received_before(
    before: dt.datetime, *, limit: int, held_by: Sequence[ReceivePosition] = ()
) -> int:
    """Delete up to `limit` events received before `before` and held by every fold position in
    `held_by` (the rollups keep what is deleted), oldest first. Returns how many."""
    held = _held_by_all(held_by)
    if held is None:
        return 0
    pks = list(
        Event.objects.filter(held, received_at__lt=before)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return _delete_ids(EVENTS_TABLE, pks)  # their OriginalBatch rows go by age, after them


def original_batches_delete_received_before(before: dt.datetime, *, limit: int) -> int:
    """Delete up to `limit` OriginalBatch rows received before `before` that no stored event
    points at any more (retention, after the events; ADR 0041), oldest first. Returns how many.

    A batch's events have its received_at (the insert stores one only then), so each check is
    a probe of the received_at index. Only inserts of now create batches, never one this old."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {ORIGINAL_BATCHES_TABLE} WHERE id IN ("
            f"SELECT b.id FROM {ORIGINAL_BATCHES_TABLE} b WHERE b.received_at < %s "
            f"AND NOT EXISTS (SELECT 1 FROM {EVENTS_TABLE} e "
            "WHERE e.received_at = b.received_at AND e.original_batch_id = b.id) "
            "ORDER BY b.received_at, b.id LIMIT %s)",
            [before, limit],
        )
        return cursor.rowcount


def rejected_events_delete_received_before(
    before: dt.datetime, *, limit: int, held_by: Sequence[ReceivePosition] = ()
) -> int:
    """Delete up to `limit` rejected events received before `before` and held by every fold
    position in `held_by`. Returns how many."""
    held = _held_by_all(held_by)
    if held is None:
        return 0
    pks = list(
        RejectedEvent.objects.filter(held, received_at__lt=before)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return rejected_events_delete(pks)
