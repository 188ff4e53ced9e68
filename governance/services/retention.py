"""Retention: remove rows older than their kind's RETENTION_*_DAYS, in bounded batches.

Stored events go first a whole partition at a time (PostgreSQL, ADR 0021: a partition wholly
before the cutoff and held by every rollup is detached and dropped, its lock held for
milliseconds), then what is left before the cutoff in batches. Every batch is its own short
transaction of at most `RETENTION_BATCH_ROWS` rows (no long locks; ingestion and folds go on
between batches). Raw and rejected events are removed only
when every rollup family already holds them (at or before both the dashboard and the intake
fold positions, ADR 0011), so the rollups keep the dashboards' history and the raw tail after
the watermarks, which readers add on top, is never touched. The rows holding the events'
originals once per insert (ADR 0041) go after them, each once no event points at it.
Idempotent: a pass that stops half-way (time budget, crash) is simply continued by the next.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.services import (
    event_partitions_drop_before,
    events_delete_received_before,
    original_batches_delete_received_before,
    rejected_events_delete_received_before,
)
from quality import selectors as quality_selectors
from quality.services.retention import (
    check_runs_delete_before,
    event_minutes_delete_before,
    incidents_resolved_delete_before,
)
from reports.selectors.watermark import watermark_get

Deleter = Callable[..., int]
# Removes whole units (partitions) before a time, each in its own transaction; returns rows.
WholeDropper = Callable[[dt.datetime], int]


def _bounds(
    now: dt.datetime,
) -> dict[str, tuple[dt.datetime | None, Deleter, WholeDropper | None]]:
    days = quality_selectors.retention_days()
    marks = quality_selectors.intake_marks()
    rollups = watermark_get()

    def cutoff(kind: str) -> dt.datetime | None:
        return None if days[kind] is None else now - dt.timedelta(days=days[kind])

    def partitions_drop(before: dt.datetime) -> int:
        dropped = event_partitions_drop_before(before, held_by=(rollups, marks.events))
        return sum(partition.rows for partition in dropped)

    return {
        "events": (
            cutoff("events"),
            partial(events_delete_received_before, held_by=(rollups, marks.events)),
            partitions_drop,
        ),
        # The events' OriginalBatch rows (ADR 0041), once no event of theirs is left.
        "original_batches": (cutoff("events"), original_batches_delete_received_before, None),
        "quarantine": (
            cutoff("quarantine"),
            partial(rejected_events_delete_received_before, held_by=(marks.rejected,)),
            None,
        ),
        "check_runs": (cutoff("check_runs"), check_runs_delete_before, None),
        "event_minutes": (cutoff("event_minutes"), event_minutes_delete_before, None),
        "resolved_incidents": (
            cutoff("resolved_incidents"),
            incidents_resolved_delete_before,
            None,
        ),
    }


def retention_enforce(
    *, now: dt.datetime | None = None, batch: int | None = None, max_seconds: float = 300.0
) -> dict[str, int]:
    """One retention pass over every kind. Returns rows removed per kind (kinds kept forever,
    or with nothing old enough, remove 0). Stops starting batches after `max_seconds`."""
    started = time.monotonic()
    size = batch or settings.RETENTION_BATCH_ROWS
    removed: dict[str, int] = {}
    for kind, (before, delete, drop_whole) in _bounds(now or timezone.now()).items():
        removed[kind] = 0
        if drop_whole is not None and before is not None:
            removed[kind] = drop_whole(before)
        while before is not None and time.monotonic() - started < max_seconds:
            with transaction.atomic():
                count = delete(before, limit=size)
            removed[kind] += count
            if count < size:
                break
    return removed
