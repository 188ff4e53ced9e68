# SQL is built from our own table and column names only; values are always bound parameters.
# ruff: noqa: S608
"""Writes for the rollup tables: incremental advance from the watermark, and rebuilds.

Idempotency: one run folds the events in (watermark, upper bound] into every table with
additive upserts (`INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`) and moves the
watermark, all in one transaction that holds the watermark row `FOR UPDATE`. A second run, or a
concurrent one, starts from the new watermark, so no event is ever counted twice.

Late events: the watermark is in fold order (txid, id; `events.receive_order`, ADR 0011): a
transaction that commits late, or a bulk load of past data, lands after it and is folded. Buckets
are computed from the event time, so an event received now with an old timestamp updates its
old bucket. The fold SQL itself is in `reports.services.rollup_folds`.

The same SQL runs on PostgreSQL and SQLite (`make demo`); only bucket truncation, the "has
warnings" test and datetime parameters differ.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from analytics_site.sql import (
    fold_until_caught_up,
    is_postgres,
    set_local_utc,
    sql_execute,
    sql_param,
)
from events.facade import events_all, identity_in_sql, person_ids_sql
from events.receive_order import START, ReceivePosition, range_sql, upper_bound
from reports.locks import rollup_tables_lock, rollup_write_lock
from reports.models import RollupWatermark, SessionRollup
from reports.models.grains import (
    ALL_MODELS,
    EVENT_METRIC,
    EVENT_TOTAL,
    FIRST_SEEN_BITMAP,
    GRAINS,
    PRODUCT_METRIC,
    PRODUCT_TOTAL,
    PRODUCT_WEEK_BY,
    USER_BITMAP,
)
from reports.selectors.watermark import WATERMARK_NAME, watermark_get
from reports.services.rollup_folds import (
    fold_transaction_tune,
    metrics_fold,
    product_dimension_weeks_add,
    product_totals_add,
    session_metrics_delta,
    sessions_fold,
    source_create,
    sources_drop,
)
from reports.services.rollup_refold import refold_by_receipt
from reports.services.user_bitmaps import (
    active_fold,
    active_week_refill,
    first_seen_fold,
    first_seen_recompute,
)


def _table(model) -> str:
    return model._meta.db_table


def _lock_watermark() -> RollupWatermark:
    """The rollup write lock, then the watermark row: the one order of every rollup writer."""
    rollup_write_lock()
    RollupWatermark.objects.get_or_create(name=WATERMARK_NAME)
    return RollupWatermark.objects.select_for_update().get(name=WATERMARK_NAME)


def _position(mark: RollupWatermark) -> ReceivePosition:
    return ReceivePosition(mark.txid, mark.event_pk, mark.received_at)


def _rollups_empty() -> None:
    """Empty every rollup table. PostgreSQL truncates and restarts the user keys at 1, so a
    full rebuild assigns dense keys again."""
    if is_postgres():
        tables = ", ".join(_table(model) for model in ALL_MODELS)
        sql_execute(f"TRUNCATE {tables} RESTART IDENTITY")
        return
    for model in ALL_MODELS:
        model.objects.all().delete()


def _rollups_analyze() -> None:
    """Fresh planner statistics after a rebuild: the tables were emptied and refilled in bulk,
    and until autovacuum analyzes them the planner guesses a 30-day read returns a few hundred
    rows and picks plans (sorts, nested index scans) that are several times slower."""
    if is_postgres():
        sql_execute(f"ANALYZE {', '.join(_table(model) for model in ALL_MODELS)}")


@dataclass(frozen=True)
class RollupRun:
    events: int
    batches: int
    seconds: float
    watermark: ReceivePosition

    def as_dict(self) -> dict[str, Any]:
        received_at = self.watermark.received_at
        return {
            "events": self.events,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "watermark": {
                "txid": self.watermark.txid,
                "id": self.watermark.pk,
                "received_at": received_at.isoformat() if received_at else None,
            },
        }


def rollups_advance_batch(*, now: dt.datetime | None = None, batch: int | None = None) -> int:
    """Fold the next batch of events (in receive order) into the rollups. Returns its size.

    One transaction: lock the watermark, copy the batch to a temp table, upsert every table,
    move the watermark. Safe to run concurrently and repeatedly.
    """
    with transaction.atomic():
        mark = _lock_watermark()
        fold_transaction_tune()
        upper = upper_bound(events_all(), _position(mark), now=now, batch=batch)
        if upper is None:
            return 0
        where, params = range_sql(_position(mark), upper)
        count = source_create("rollup_delta", where, params)
        metrics_fold("rollup_delta")
        first_seen_fold("rollup_delta")
        active_fold("rollup_delta")
        sessions_fold("rollup_delta")
        sources_drop("rollup_delta")
        mark.txid, mark.event_pk, mark.received_at = upper.txid, upper.pk, upper.received_at
        mark.events_rolled_up += count
        mark.save(
            update_fields=["txid", "received_at", "event_pk", "events_rolled_up", "updated_at"]
        )
    return count


def rollups_fold_stored_behind(event_pks: Sequence[int]) -> int:
    """Fold events stored behind the watermark, in the caller's transaction. Returns how many.

    Events stored now get this transaction's txid, which is after the watermark (ADR 0011), so
    today this folds nothing: replays land in the raw tail and the next advance takes them. Kept
    as the listener of `events_stored_behind_notify` for a store that would write under an older
    position; only events the watermark holds are folded here, so nothing counts twice. The
    generation changes, because rollup contents change under the same watermark and cached
    rollup reads are keyed by both.
    """
    if not event_pks:
        return 0
    with transaction.atomic():
        mark = _lock_watermark()
        if mark.txid is None:  # nothing folded yet: the next advance takes everything
            return 0
        set_local_utc()  # not fold_transaction_tune(): the caller's commit must stay synchronous
        below, params = range_sql(START, _position(mark))
        ids = ", ".join(["%s"] * len(event_pks))
        count = source_create("rollup_behind", f"{below} AND id IN ({ids})", [*params, *event_pks])
        if count:
            metrics_fold("rollup_behind")
            first_seen_fold("rollup_behind")
            active_fold("rollup_behind")
            sessions_fold("rollup_behind")
            mark.events_rolled_up += count
            mark.generation = uuid.uuid4()
            mark.save(update_fields=["events_rolled_up", "generation", "updated_at"])
        sources_drop("rollup_behind")
    return count


def rollups_advance(
    *, now: dt.datetime | None = None, batch: int | None = None, max_seconds: float = 25.0
) -> RollupRun:
    """Catch up in batches until nothing is pending or the time budget is spent."""
    started = time.monotonic()
    total, batches = fold_until_caught_up(
        lambda: rollups_advance_batch(now=now, batch=batch), max_seconds
    )
    return RollupRun(total, batches, time.monotonic() - started, watermark_get())


def rollups_rebuild(
    *, since: dt.date | None = None, now: dt.datetime | None = None, batch: int | None = None
) -> RollupRun:
    """Rebuild rollups from raw events: everything, or every bucket from `since` (UTC) on.

    Everything: empty the rollups, then refold every event in slices of receipt time in one
    transaction (`reports.services.rollup_refold`, ADR 0035), then fold what arrived meanwhile.

    A partial rebuild keeps the watermark: it deletes the buckets from `since`, refolds the
    events of those buckets that are under the watermark, and recomputes the sessions and
    first-seen rows of the sessions and users those events touch. Weekly buckets (product
    totals, user bitmaps) are deleted from the week of `since`; that week's days before
    `since` come back from the kept daily rows.
    """
    started = time.monotonic()
    if since is None or watermark_get().is_start:
        with transaction.atomic():
            _lock_watermark()
            rollup_tables_lock(shared=False)  # no dashboard snapshot holds a table TRUNCATE needs
            _rollups_empty()
            RollupWatermark.objects.filter(name=WATERMARK_NAME).update(
                txid=None,
                received_at=None,
                event_pk=0,
                events_rolled_up=0,
                generation=uuid.uuid4(),
            )
        with transaction.atomic():
            mark = _lock_watermark()
            # A periodic fold that took the lock between the two transactions has begun from
            # the start in fold order: the incremental fold below finishes from where it is.
            refolded, slices = (
                refold_by_receipt(mark, now=now, size=batch) if _position(mark).is_start else (0, 0)
            )
        run = rollups_advance(now=now, batch=batch, max_seconds=float("inf"))  # since then
        _rollups_analyze()
        return RollupRun(
            refolded + run.events, slices + run.batches, time.monotonic() - started, run.watermark
        )
    since_at = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    with transaction.atomic():
        mark = _lock_watermark()
        fold_transaction_tune()
        mark.generation = uuid.uuid4()
        mark.save(update_fields=["generation", "updated_at"])
        below, params = range_sql(START, _position(mark))
        for grain in GRAINS:
            for model in (
                EVENT_METRIC[grain],
                EVENT_TOTAL[grain],
                PRODUCT_METRIC[grain],
                PRODUCT_TOTAL[grain],
                USER_BITMAP[grain],
                FIRST_SEEN_BITMAP[grain],
            ):
                model.objects.filter(bucket__gte=since_at).delete()
        # The week of `since` is refolded whole: its days before `since` from the daily product
        # metrics and user bitmaps (kept), the rest from the events.
        week_at = since_at - dt.timedelta(days=since_at.weekday())
        PRODUCT_TOTAL["week"].objects.filter(bucket__gte=week_at).delete()
        USER_BITMAP["week"].objects.filter(bucket__gte=week_at).delete()
        active_week_refill(week_at, since_at)
        # The kept days of that week per device and country: summed over both they are the
        # daily totals, so one copy feeds the weekly totals and the weekly rows per dimension.
        sql_execute(
            "CREATE TEMPORARY TABLE rollup_rebuild_week AS SELECT bucket AS day, device_type, "
            "country, product_id, category, event_type, events, revenue "
            f"FROM {_table(PRODUCT_METRIC['day'])} WHERE bucket >= %s AND bucket < %s",
            [sql_param(week_at), sql_param(since_at)],
        )
        product_totals_add("week", "rollup_rebuild_week")
        for field, model in PRODUCT_WEEK_BY.items():
            model.objects.filter(bucket__gte=week_at).delete()
            product_dimension_weeks_add(field, "rollup_rebuild_week")
        sources_drop("rollup_rebuild_week")
        count = source_create("rollup_rebuild", f"{below} AND timestamp >= %s", [*params, since_at])
        metrics_fold("rollup_rebuild")
        # Sessions and users touched from `since` on are recomputed from all their events.
        touched = "session_id IN (SELECT session_id FROM rollup_rebuild)"
        session_metrics_delta("-", touched)
        sql_execute(f"DELETE FROM {_table(SessionRollup)} WHERE {touched}")
        source_create("rollup_rebuild_sessions", f"{below} AND {touched}", params)
        sessions_fold("rollup_rebuild_sessions")
        # Touched users keep their keys (older bitmaps hold them); their first-seen times are
        # recomputed, then the buckets from `since` get their active users again.
        users = identity_in_sql(person_ids_sql("SELECT user_id FROM rollup_rebuild"))
        source_create("rollup_rebuild_users", f"{below} AND {users}", params)
        first_seen_recompute("rollup_rebuild_users", since_at)
        active_fold("rollup_rebuild")
        sources_drop("rollup_rebuild", "rollup_rebuild_sessions", "rollup_rebuild_users")
    run = rollups_advance(now=now, batch=batch, max_seconds=float("inf"))
    _rollups_analyze()
    return RollupRun(count + run.events, run.batches + 1, time.monotonic() - started, run.watermark)
