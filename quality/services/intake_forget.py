"""Keeping the intake rollups equal to the raw counts when rows are erased (ADR 0007, 0011).

An erasure deletes a person's stored and rejected events; rows the intake rollups already hold
(under their watermarks) are subtracted here, in the erasure's transaction and under the intake
watermark's row lock, exactly as a replay adjusts them (`intake_replay_adjust`). Rows after the
watermarks are raw tail: deleting them is enough. Retention does not call this: it deletes only
rows the rollups hold, and the rollups keep their history.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from events.facade import REJECTED_STATUS_QUARANTINED, events_all, rejected_events_all
from events.receive_order import ReceivePosition
from quality.selectors.intake import IntakeMarks
from quality.services.check_rollups import check_rollups_adjust
from quality.services.intake import (
    HOUR_TABLE,
    MINUTE_TABLE,
    QuarantinedBefore,
    _is_fresh,
    _lock_watermark,
    _upsert_values,
    intake_replay_adjust,
)


def _floor(value: dt.datetime, unit: str) -> dt.datetime:
    value = value.astimezone(dt.UTC).replace(second=0, microsecond=0)
    return value.replace(minute=0) if unit == "hour" else value


def intake_rows_forget(event_pks: Sequence[int], rejected_pks: Sequence[int]) -> None:
    """Subtract the given stored and rejected events from the intake rollups that hold them.
    Call inside the erasure batch's transaction, before the rows are deleted."""
    mark = _lock_watermark()
    marks = IntakeMarks(
        ReceivePosition(mark.event_txid, mark.event_pk),
        ReceivePosition(mark.rejected_txid, mark.rejected_pk),
    )
    check_rollups_adjust(marks.events, removed=event_pks)
    hours: defaultdict[tuple[dt.datetime, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    minutes: defaultdict[dt.datetime, list[int]] = defaultdict(lambda: [0, 0])
    rows = events_all().filter(pk__in=list(event_pks))
    for received_at, txid, pk, event_type, timestamp, warnings in rows.values_list(
        "received_at", "txid", "id", "event_type", "timestamp", "warnings"
    ):
        if not marks.events.holds(txid, pk):
            continue
        warned = 1 if warnings else 0
        counts = hours[(_floor(received_at, "hour"), event_type)]
        counts[0], counts[1] = counts[0] - 1, counts[1] - warned
        counts[3] -= _is_fresh(received_at, timestamp)
        counts = minutes[_floor(timestamp, "minute")]
        counts[0], counts[1] = counts[0] - 1, counts[1] - warned
    _upsert_values(
        HOUR_TABLE,
        ("bucket", "event_type"),
        ("accepted", "warned", "quarantined", "fresh"),
        [(*key, *deltas) for key, deltas in sorted(hours.items())],
    )
    _upsert_values(
        MINUTE_TABLE,
        ("bucket",),
        ("events", "warned"),
        [(minute, *deltas) for minute, deltas in sorted(minutes.items())],
    )
    # A quarantined row leaving is what a replay that stores it does to the intake rollups.
    quarantined = rejected_events_all().filter(
        pk__in=list(rejected_pks), status=REJECTED_STATUS_QUARANTINED
    )
    intake_replay_adjust([QuarantinedBefore.of(row) for row in quarantined], [], [])
