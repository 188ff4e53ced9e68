# SQL is built from catalog names and partition names we make; values are bound parameters.
# ruff: noqa: S608
"""Creating the events table's partitions ahead and dropping old ones whole (ADR 0021).

A new partition is built as a plain table and attached (ATTACH takes a SHARE UPDATE EXCLUSIVE
lock on the parent, which lets inserts and reads go on); rows the default partition caught for
its range (partitions not made in time) move into it in the same transaction. A partition is
dropped only when it lies wholly before the cutoff and every rollup family holds all its rows,
under a lock_timeout: a partition whose lock does not come in time waits for the next pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from events.partitioning.bounds import (
    DEFAULT_PARTITION,
    TABLE,
    interval_floor,
    interval_next,
    missing_ranges,
    partition_name,
)
from events.partitioning.catalog import (
    EventPartition,
    event_partitions,
    events_table_is_partitioned,
)
from events.receive_order import ReceivePosition


def _attach_new(start: dt.datetime, end: dt.datetime) -> str:
    name = partition_name(start)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = {int(settings.EVENTS_PARTITION_LOCK_TIMEOUT_MS)}")
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING STORAGE)"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
            "WHERE received_at >= %s AND received_at < %s RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        cursor.execute(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
    return name


def event_partitions_ensure(since: dt.datetime, until: dt.datetime) -> list[str]:
    """Create the partitions missing for received_at in [since, until) (aligned on the interval;
    never overlapping the existing ones). Returns the names created. Idempotent."""
    if not events_table_is_partitioned():
        return []
    existing = [(p.start, p.end) for p in event_partitions() if not p.is_default]
    interval = settings.EVENTS_PARTITION_INTERVAL
    return [
        _attach_new(start, end) for start, end in missing_ranges(since, until, existing, interval)
    ]


def event_partitions_maintain(*, now: dt.datetime | None = None) -> list[str]:
    """Keep EVENTS_PARTITIONS_AHEAD intervals of partitions ahead of now (the periodic task)."""
    now = now or timezone.now()
    interval = settings.EVENTS_PARTITION_INTERVAL
    until = interval_floor(now, interval)
    for _ in range(settings.EVENTS_PARTITIONS_AHEAD + 1):
        until = interval_next(until, interval)
    return event_partitions_ensure(now, until)


def _last_row(cursor, name: str) -> tuple[int, int] | None:
    cursor.execute(f"SELECT txid, id FROM {name} ORDER BY txid DESC, id DESC LIMIT 1")
    return cursor.fetchone()


def _held(last: tuple[int, int] | None, held_by: Sequence[ReceivePosition]) -> bool:
    """Whether every position holds the partition's rows (an empty partition always is)."""
    if last is None:
        return True
    return all(
        not position.is_start and last <= (position.txid, position.pk) for position in held_by
    )


@dataclass(frozen=True)
class DroppedPartition:
    name: str
    rows: int


def _drop(partition: EventPartition, held_by: Sequence[ReceivePosition]) -> DroppedPartition | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition.name}")
        rows = cursor.fetchone()[0]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"SET LOCAL lock_timeout = {int(settings.EVENTS_PARTITION_LOCK_TIMEOUT_MS)}"
            )
            cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
            if not _held(_last_row(cursor, partition.name), held_by):
                return None
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name}")
            cursor.execute(f"DROP TABLE {partition.name}")
    except OperationalError as error:
        if isinstance(error.__cause__, psycopg.errors.LockNotAvailable):
            return None
        raise
    return DroppedPartition(partition.name, rows)


def event_partitions_drop_before(
    before: dt.datetime, *, held_by: Sequence[ReceivePosition]
) -> list[DroppedPartition]:
    """Drop the partitions whose every row was received before `before` and is held by every
    fold position in `held_by`, oldest first; stops at the first one it may not drop yet (held
    back by a fold, or its lock not granted in time). The default partition is never dropped."""
    if not events_table_is_partitioned() or any(p.is_start for p in held_by):
        return []
    dropped = []
    for partition in event_partitions():
        if partition.is_default or partition.end is None or partition.end > before:
            break
        result = _drop(partition, held_by)
        if result is None:
            break
        dropped.append(result)
    return dropped
