# SQL is built from our own table and column names only; values are always bound parameters.
# ruff: noqa: S608
"""The full rebuild's refold: every event up to one upper bound, folded in slices of receipt
time instead of batches of fold order (ADR 0035).

The incremental fold takes events in fold order (txid, id; ADR 0011). For live traffic that is
also time order, so a batch touches the rollup rows of the last minutes. For a refold of history
it need not be: a bulk load or an import commits months of events in one transaction, and then
every batch of 500,000 events spans all of them, touches every hourly row of every table again
(an upsert per cell, an unpacked and repacked bitmap per hour and device and country), and each
batch costs more than the one before as the tables fill: at 50M events (benchmarks/history.md,
2026-12-06) the refold would have taken hours. Sliced by `received_at` (each slice `size` events,
cut on the received_at index), a slice's events fall into a day or so of buckets, which few other
slices touch, so the whole refold is one pass over the events and about one write per rollup row.

Exactness is the fold's own: the slices partition the events up to the bound (each in exactly
one), and every fold step is order-independent (sums, min/max and first-event merges of
sessions, OR of bitmaps, first-seen moves to earlier buckets), as late events already require.
Only the user keys differ from a fold in txid order (assigned in slice order): bitmaps compare as
sets of user ids (tests/integration/test_rollup_refold.py).

It is one transaction holding the watermark row (as a fold batch does): readers see the emptied
rollups and the whole raw tail until it commits (as during the old batched refold), the periodic
fold waits for it, and a crash leaves the rollups empty with the watermark at the start, from
where the periodic fold refolds in batches.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from itertools import pairwise
from typing import Any

from django.db import connection

from analytics_site.sql import is_postgres, rollup_batch_rows, sql_execute
from events.facade import EVENTS_TABLE, events_all
from events.receive_order import START, ReceivePosition, range_sql, upper_bound
from reports.models import RollupWatermark, SessionRollup, UserFirstSeen
from reports.services.rollup_folds import (
    fold_transaction_tune,
    metrics_fold,
    sessions_fold,
    source_create,
    sources_drop,
)
from reports.services.user_bitmaps import active_fold, first_seen_fold

logger = logging.getLogger(__name__)

# upper_bound() takes at most this many rows: here, all that are committed and before the horizon.
EVERYTHING = 2**62


def _slice_cuts(size: int) -> list[Any]:
    """received_at values every `size` events in received_at order: the slices are (previous
    cut, next cut], the first without a lower bound and the last without an upper one, so every
    event is in exactly one whatever the ties. Each query walks `size` entries of the
    received_at index (index-only on vacuumed partitions)."""
    cuts: list[Any] = []
    with connection.cursor() as cursor:
        while True:
            after, params = ("received_at > %s", [cuts[-1]]) if cuts else ("1 = 1", [])
            cursor.execute(
                f"SELECT received_at FROM {EVENTS_TABLE} WHERE {after} "
                "ORDER BY received_at LIMIT 1 OFFSET %s",
                [*params, size - 1],
            )
            row = cursor.fetchone()
            if row is None:
                return cuts
            cuts.append(row[0])


def _slice_sql(low: Any, high: Any) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if low is not None:
        clauses.append("received_at > %s")
        params.append(low)
    if high is not None:
        clauses.append("received_at <= %s")
        params.append(high)
    return " AND ".join(clauses) or "1 = 1", params


def _statistics_refresh() -> None:
    """Planner statistics of the tables the next slice joins against. The rebuild emptied them
    and autovacuum cannot see this transaction's rows, so the planner would take the session
    and first-seen tables for empty and join them row by row (measured: 90 s instead of under
    a second for one slice's sessions at 1M events). ANALYZE counts the transaction's own rows."""
    if is_postgres():
        sql_execute(f"ANALYZE {SessionRollup._meta.db_table}, {UserFirstSeen._meta.db_table}")


def refold_by_receipt(
    mark: RollupWatermark, *, now: dt.datetime | None = None, size: int | None = None
) -> tuple[int, int]:
    """Fold every event up to the current upper bound into the emptied rollups, slice by
    slice of receipt time, and move the watermark there. The caller's transaction holds the
    watermark row (`mark`). Returns (events, slices)."""
    fold_transaction_tune()
    upper: ReceivePosition | None = upper_bound(events_all(), START, now=now, batch=EVERYTHING)
    if upper is None:
        return 0, 0
    until, until_params = range_sql(START, upper)
    bounds = [None, *_slice_cuts(size or rollup_batch_rows()), None]
    total, started = 0, time.monotonic()
    for index, (low, high) in enumerate(pairwise(bounds), 1):
        where, params = _slice_sql(low, high)
        total += source_create("rollup_delta", f"{until} AND {where}", [*until_params, *params])
        metrics_fold("rollup_delta")
        first_seen_fold("rollup_delta")
        active_fold("rollup_delta")
        sessions_fold("rollup_delta")
        sources_drop("rollup_delta")
        _statistics_refresh()
        # A refold of tens of millions of events takes a while: say how far it is.
        logger.info(
            "rollup refold: slice %d of %d, %d events in %.0f s",
            index,
            len(bounds) - 1,
            total,
            time.monotonic() - started,
        )
    mark.txid, mark.event_pk, mark.received_at = upper.txid, upper.pk, upper.received_at
    mark.events_rolled_up = total
    mark.save(update_fields=["txid", "received_at", "event_pk", "events_rolled_up", "updated_at"])
    return total, len(bounds) - 1
