# SQL is built from our own table and column names only; values are always bound parameters.
# ruff: noqa: S608
"""Writes for the rollup tables: incremental advance from the watermark, and rebuilds.

Idempotency: one run folds the events in (watermark, upper bound] into every table with
additive upserts (`INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`) and moves the
watermark, all in one transaction that holds the watermark row `FOR UPDATE`. A second run, or a
concurrent one, starts from the new watermark, so no event is ever counted twice.

Late events: the watermark is in receive order (received_at, id), and buckets are computed from
the event time, so an event received now with an old timestamp updates its old bucket.
Sessions and first-seen rows are merged (min/max, first event by (timestamp, id)); session
metrics (and their totals without device and country) are kept exact by subtracting a
session's old row and adding its merged row.

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

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from analytics_site.sql import (
    fold_until_caught_up,
    has_warnings_sql,
    is_postgres,
    rollup_batch_rows,
    rollup_safety_lag,
    set_local_utc,
    sql_execute,
    sql_param,
    time_bucket,
)
from events.models import Event
from reports.models import (
    EventMetricDaily,
    EventMetricHourly,
    EventTotalDaily,
    EventTotalHourly,
    ProductCountryWeekly,
    ProductDeviceWeekly,
    ProductMetricDaily,
    ProductMetricHourly,
    ProductTotalDaily,
    ProductTotalHourly,
    ProductTotalWeekly,
    RollupWatermark,
    SessionMetricDaily,
    SessionMetricHourly,
    SessionRollup,
    SessionTotalDaily,
    SessionTotalHourly,
    UserFirstSeen,
)
from reports.user_bitmaps import (
    FIRST_SEEN_BITMAP,
    USER_BITMAP,
    active_week_refill,
    first_seen_recompute,
)
from reports.user_bitmaps import active_fold as _fold_active_users
from reports.user_bitmaps import first_seen_fold as _fold_first_seen

WATERMARK_NAME = "events"
FUNNEL_STEPS = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase")
PRODUCT_EVENT_TYPES = ("product_view", "add_to_cart", "purchase")
GRAINS = ("hour", "day")
EVENT_TABLE = Event._meta.db_table

EVENT_METRIC = {"hour": EventMetricHourly, "day": EventMetricDaily}
EVENT_TOTAL = {"hour": EventTotalHourly, "day": EventTotalDaily}
PRODUCT_METRIC = {"hour": ProductMetricHourly, "day": ProductMetricDaily}
PRODUCT_TOTAL = {"hour": ProductTotalHourly, "day": ProductTotalDaily, "week": ProductTotalWeekly}
# Weekly product metrics per filter dimension (the field a device or country filter matches).
PRODUCT_WEEK_BY = {"device_type": ProductDeviceWeekly, "country": ProductCountryWeekly}
SESSION_METRIC = {"hour": SessionMetricHourly, "day": SessionMetricDaily}
SESSION_TOTAL = {"hour": SessionTotalHourly, "day": SessionTotalDaily}
ALL_MODELS = (
    *EVENT_METRIC.values(),
    *EVENT_TOTAL.values(),
    *PRODUCT_METRIC.values(),
    *PRODUCT_TOTAL.values(),
    *PRODUCT_WEEK_BY.values(),
    *USER_BITMAP.values(),
    *FIRST_SEEN_BITMAP.values(),
    *SESSION_METRIC.values(),
    *SESSION_TOTAL.values(),
    SessionRollup,
    UserFirstSeen,
)


def safety_lag() -> dt.timedelta:
    return rollup_safety_lag()


def _tune_session() -> None:
    """Settings for this transaction only: UTC buckets, room for the batch's hash aggregates,
    and no wait for the WAL flush (a crash loses the whole batch, watermark included, so the
    next run simply folds it again)."""
    if is_postgres():
        set_local_utc()
        sql_execute("SET LOCAL work_mem = '256MB'")
        sql_execute("SET LOCAL synchronous_commit = off")


def _table(model) -> str:
    return model._meta.db_table


_STEP_CASE = (
    "CASE event_type "
    + " ".join(f"WHEN '{step}' THEN {index + 1}" for index, step in enumerate(FUNNEL_STEPS))
    + " ELSE 0 END"
)
_PRODUCT_TYPES_SQL = ", ".join(f"'{name}'" for name in PRODUCT_EVENT_TYPES)


# ---------------------------------------------------------------------------------------------
# Source sets of events (temporary tables) and the upserts that fold them in.


def _create_source(name: str, where: str, params: list[Any]) -> int:
    """Copy the columns the rollups need for the events matching `where` into a temp table."""
    sql_execute(f"DROP TABLE IF EXISTS {name}")
    sql_execute(
        f"CREATE TEMPORARY TABLE {name} AS "
        "SELECT id, event_type, timestamp AS ts, user_id, session_id, device_type, country, "
        "product_id, category, revenue, "
        f"CASE WHEN {has_warnings_sql()} THEN 1 ELSE 0 END AS warned, "
        f"{_STEP_CASE} AS step, "
        f"{time_bucket('timestamp', 'hour')} AS hour, {time_bucket('timestamp', 'day')} AS day "
        f"FROM {EVENT_TABLE} WHERE {where}",
        params,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {name}")
        return cursor.fetchone()[0]


def _drop_source(*names: str) -> None:
    for name in names:
        sql_execute(f"DROP TABLE IF EXISTS {name}")


def _fold_metrics(source: str) -> None:
    """Additive tables: event and product metrics and their totals without device and country
    (user bitmaps: reports.user_bitmaps).

    The source is aggregated once per hour (with its day) into small temp tables; hourly rows
    come from those directly and daily rows from summing them, so the batch is scanned once
    per table family, not once per grain.
    """
    sql_execute("DROP TABLE IF EXISTS rollup_agg_events")
    sql_execute(
        "CREATE TEMPORARY TABLE rollup_agg_events AS "
        "SELECT hour, day, event_type, device_type, country, COUNT(*) AS events, "
        "SUM(warned) AS warned, "
        "COALESCE(SUM(CASE WHEN event_type = 'purchase' THEN revenue END), 0) AS revenue "
        f"FROM {source} GROUP BY hour, day, event_type, device_type, country"
    )
    sql_execute("DROP TABLE IF EXISTS rollup_agg_products")
    sql_execute(
        "CREATE TEMPORARY TABLE rollup_agg_products AS "
        "SELECT hour, day, product_id, category, event_type, device_type, country, "
        "COUNT(*) AS events, COALESCE(SUM(revenue), 0) AS revenue "
        f"FROM {source} WHERE event_type IN ({_PRODUCT_TYPES_SQL}) "
        "GROUP BY hour, day, product_id, category, event_type, device_type, country"
    )
    for grain in GRAINS:
        table = _table(EVENT_METRIC[grain])
        sql_execute(
            f"INSERT INTO {table} (bucket, event_type, device_type, country, events, warned, "
            "revenue) "
            f"SELECT {grain}, event_type, device_type, country, SUM(events), SUM(warned), "
            "SUM(revenue) FROM rollup_agg_events WHERE 1 = 1 "
            f"GROUP BY {grain}, event_type, device_type, country "
            "ON CONFLICT (bucket, event_type, device_type, country) DO UPDATE SET "
            f"events = {table}.events + excluded.events, "
            f"warned = {table}.warned + excluded.warned, "
            f"revenue = {table}.revenue + excluded.revenue"
        )
        table = _table(EVENT_TOTAL[grain])
        sql_execute(
            f"INSERT INTO {table} (bucket, event_type, events, warned, revenue) "
            f"SELECT {grain}, event_type, SUM(events), SUM(warned), SUM(revenue) "
            f"FROM rollup_agg_events WHERE 1 = 1 GROUP BY {grain}, event_type "
            "ON CONFLICT (bucket, event_type) DO UPDATE SET "
            f"events = {table}.events + excluded.events, "
            f"warned = {table}.warned + excluded.warned, "
            f"revenue = {table}.revenue + excluded.revenue"
        )
        table = _table(PRODUCT_METRIC[grain])
        sql_execute(
            f"INSERT INTO {table} (bucket, product_id, category, event_type, device_type, "
            "country, events, revenue) "
            f"SELECT {grain}, product_id, category, event_type, device_type, country, "
            "SUM(events), SUM(revenue) FROM rollup_agg_products WHERE 1 = 1 "
            f"GROUP BY {grain}, product_id, category, event_type, device_type, country "
            "ON CONFLICT (bucket, product_id, category, event_type, device_type, country) "
            f"DO UPDATE SET events = {table}.events + excluded.events, "
            f"revenue = {table}.revenue + excluded.revenue"
        )
    for grain in (*GRAINS, "week"):
        _product_totals_add(grain, "rollup_agg_products")
    for field in PRODUCT_WEEK_BY:
        _product_dimension_weeks_add(field, "rollup_agg_products")
    _drop_source("rollup_agg_events", "rollup_agg_products")


def _product_dimension_weeks_add(field: str, source: str) -> None:
    """Add the product rows of `source` (its `day`, per device and country) to the weekly
    product metrics per `field` (device_type or country)."""
    table = _table(PRODUCT_WEEK_BY[field])
    week = time_bucket("day", "week")
    sql_execute(
        f"INSERT INTO {table} (bucket, {field}, product_id, category, event_type, events, "
        f"revenue) SELECT {week}, {field}, product_id, category, event_type, SUM(events), "
        f"SUM(revenue) FROM {source} WHERE 1 = 1 "
        f"GROUP BY {week}, {field}, product_id, category, event_type "
        f"ON CONFLICT ({field}, bucket, product_id, category, event_type) "
        f"DO UPDATE SET events = {table}.events + excluded.events, "
        f"revenue = {table}.revenue + excluded.revenue"
    )


def _product_totals_add(grain: str, source: str) -> None:
    """Add the product rows of `source` (its `day`, and `hour` for the hourly grain; per
    device and country or not) to the product totals of a grain."""
    table = _table(PRODUCT_TOTAL[grain])
    bucket = time_bucket("day", "week") if grain == "week" else grain
    sql_execute(
        f"INSERT INTO {table} (bucket, product_id, category, event_type, events, revenue) "
        f"SELECT {bucket}, product_id, category, event_type, SUM(events), SUM(revenue) "
        f"FROM {source} WHERE 1 = 1 GROUP BY {bucket}, product_id, category, event_type "
        "ON CONFLICT (bucket, product_id, category, event_type) "
        f"DO UPDATE SET events = {table}.events + excluded.events, "
        f"revenue = {table}.revenue + excluded.revenue"
    )


def _session_metric_delta(sign: str, where: str) -> None:
    """Add (sign '+') or subtract ('-') the selected session rows from the session metrics and
    their totals without device and country. The rows are grouped once (by hour, day, device,
    country and step) into a small temp table that every grain of both tables is summed from."""
    sessions = _table(SessionRollup)
    cells = "rollup_session_cells"
    hour, day = time_bucket("started_at", "hour"), time_bucket("started_at", "day")
    sql_execute(f"DROP TABLE IF EXISTS {cells}")
    sql_execute(
        f"CREATE TEMPORARY TABLE {cells} AS SELECT {hour} AS hour, {day} AS day, device_type, "
        "country, reached_step, COUNT(*) AS sessions, COALESCE(SUM(revenue), 0) AS revenue "
        f"FROM {sessions} WHERE {where} GROUP BY {hour}, {day}, device_type, country, "
        "reached_step"
    )
    for grain in GRAINS:
        table = _table(SESSION_METRIC[grain])
        sql_execute(
            f"INSERT INTO {table} (bucket, device_type, country, reached_step, sessions, revenue) "
            f"SELECT {grain}, device_type, country, reached_step, "
            f"{sign}SUM(sessions), {sign}SUM(revenue) FROM {cells} WHERE 1 = 1 "
            f"GROUP BY {grain}, device_type, country, reached_step "
            "ON CONFLICT (bucket, device_type, country, reached_step) DO UPDATE SET "
            f"sessions = {table}.sessions + excluded.sessions, "
            f"revenue = {table}.revenue + excluded.revenue"
        )
        table = _table(SESSION_TOTAL[grain])
        sql_execute(
            f"INSERT INTO {table} (bucket, reached_step, sessions, revenue) "
            f"SELECT {grain}, reached_step, {sign}SUM(sessions), {sign}SUM(revenue) "
            f"FROM {cells} WHERE 1 = 1 GROUP BY {grain}, reached_step "
            "ON CONFLICT (bucket, reached_step) DO UPDATE SET "
            f"sessions = {table}.sessions + excluded.sessions, "
            f"revenue = {table}.revenue + excluded.revenue"
        )
    _drop_source(cells)


def _fold_sessions(source: str) -> None:
    """Merge the source's events into session rows, keeping session metrics and totals exact."""
    delta = "rollup_session_delta"
    sql_execute(f"DROP TABLE IF EXISTS {delta}")
    sql_execute(
        f"CREATE TEMPORARY TABLE {delta} AS "
        "SELECT a.session_id, f.user_id, a.started_at, f.id AS first_event_pk, a.ended_at, "
        "a.events, a.pages, a.reached_step, a.revenue, f.device_type, f.country FROM ("
        "SELECT session_id, MIN(ts) AS started_at, MAX(ts) AS ended_at, COUNT(*) AS events, "
        "SUM(CASE WHEN event_type = 'page_view' THEN 1 ELSE 0 END) AS pages, "
        "MAX(step) AS reached_step, "
        "COALESCE(SUM(CASE WHEN event_type = 'purchase' THEN revenue END), 0) AS revenue "
        f"FROM {source} GROUP BY session_id) a JOIN ("
        "SELECT session_id, id, user_id, device_type, country, ROW_NUMBER() OVER ("
        f"PARTITION BY session_id ORDER BY ts, id) AS rn FROM {source}) f "
        "ON f.session_id = a.session_id AND f.rn = 1"
    )
    affected = f"session_id IN (SELECT session_id FROM {delta})"
    _session_metric_delta("-", affected)
    sessions = _table(SessionRollup)
    earlier = (
        f"(excluded.started_at, excluded.first_event_pk) < "
        f"({sessions}.started_at, {sessions}.first_event_pk)"
    )
    first_columns = ("user_id", "first_event_pk", "started_at", "device_type", "country")
    first_sets = ", ".join(
        f"{column} = CASE WHEN {earlier} THEN excluded.{column} ELSE {sessions}.{column} END"
        for column in first_columns
    )
    sql_execute(
        f"INSERT INTO {sessions} (session_id, user_id, started_at, first_event_pk, ended_at, "
        "events, pages, reached_step, revenue, device_type, country) "
        "SELECT session_id, user_id, started_at, first_event_pk, ended_at, events, pages, "
        f"reached_step, revenue, device_type, country FROM {delta} WHERE 1 = 1 "
        f"ON CONFLICT (session_id) DO UPDATE SET {first_sets}, "
        f"ended_at = CASE WHEN excluded.ended_at > {sessions}.ended_at "
        f"THEN excluded.ended_at ELSE {sessions}.ended_at END, "
        f"events = {sessions}.events + excluded.events, "
        f"pages = {sessions}.pages + excluded.pages, "
        f"reached_step = CASE WHEN excluded.reached_step > {sessions}.reached_step "
        f"THEN excluded.reached_step ELSE {sessions}.reached_step END, "
        f"revenue = {sessions}.revenue + excluded.revenue"
    )
    _session_metric_delta("+", affected)
    _drop_source(delta)


# ---------------------------------------------------------------------------------------------
# Watermark.


def _after(received_at: dt.datetime | None, event_pk: int) -> Q:
    if received_at is None:
        return Q()
    # The leading range condition lets PostgreSQL use the received_at index (an OR alone
    # makes it scan the table).
    return Q(received_at__gte=received_at) & (
        Q(received_at__gt=received_at) | Q(received_at=received_at, id__gt=event_pk)
    )


def watermark_get() -> tuple[dt.datetime | None, int]:
    """The (received_at, id) up to which rollups hold events; (None, 0) before the first run."""
    row = (
        RollupWatermark.objects.filter(name=WATERMARK_NAME)
        .values_list("received_at", "event_pk")
        .first()
    )
    return row if row else (None, 0)


def rollup_state() -> tuple[uuid.UUID | None, dt.datetime | None, int]:
    """(generation, received_at, id): the rollup tables' contents are a function of these."""
    row = (
        RollupWatermark.objects.filter(name=WATERMARK_NAME)
        .values_list("generation", "received_at", "event_pk")
        .first()
    )
    return row if row else (None, None, 0)


def events_after_watermark(received_at: dt.datetime | None, event_pk: int):
    """Raw events not yet in the rollups (the tail that readers add on top)."""
    return Event.objects.filter(_after(received_at, event_pk))


def _lock_watermark() -> RollupWatermark:
    RollupWatermark.objects.get_or_create(name=WATERMARK_NAME)
    return RollupWatermark.objects.select_for_update().get(name=WATERMARK_NAME)


def _upper_bound(
    mark: RollupWatermark, horizon: dt.datetime, batch: int
) -> tuple[dt.datetime, int] | None:
    pending = Event.objects.filter(
        _after(mark.received_at, mark.event_pk), received_at__lte=horizon
    )
    nth = pending.order_by("received_at", "id").values_list("received_at", "id")[batch - 1 : batch]
    row = next(iter(nth), None)
    if row is None:
        row = pending.order_by("-received_at", "-id").values_list("received_at", "id").first()
    return row


def _range_where(mark: RollupWatermark, upper: tuple[dt.datetime, int]) -> tuple[str, list[Any]]:
    where = "(received_at < %s OR (received_at = %s AND id <= %s))"
    params: list[Any] = [upper[0], upper[0], upper[1]]
    if mark.received_at is not None:
        where += " AND received_at >= %s AND (received_at > %s OR id > %s)"
        params += [mark.received_at, mark.received_at, mark.event_pk]
    return where, params


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
    watermark: tuple[dt.datetime | None, int]

    def as_dict(self) -> dict[str, Any]:
        received_at, event_pk = self.watermark
        return {
            "events": self.events,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "watermark": [received_at.isoformat() if received_at else None, event_pk],
        }


def rollups_advance_batch(*, now: dt.datetime | None = None, batch: int | None = None) -> int:
    """Fold the next batch of events (in receive order) into the rollups. Returns its size.

    One transaction: lock the watermark, copy the batch to a temp table, upsert every table,
    move the watermark. Safe to run concurrently and repeatedly.
    """
    horizon = (now or timezone.now()) - safety_lag()
    with transaction.atomic():
        mark = _lock_watermark()
        _tune_session()
        upper = _upper_bound(mark, horizon, batch or rollup_batch_rows())
        if upper is None:
            return 0
        where, params = _range_where(mark, upper)
        count = _create_source("rollup_delta", where, params)
        _fold_metrics("rollup_delta")
        _fold_first_seen("rollup_delta")
        _fold_active_users("rollup_delta")
        _fold_sessions("rollup_delta")
        _drop_source("rollup_delta")
        mark.received_at, mark.event_pk = upper
        mark.events_rolled_up += count
        mark.save(update_fields=["received_at", "event_pk", "events_rolled_up", "updated_at"])
    return count


def rollups_fold_stored_behind(event_pks: Sequence[int]) -> int:
    """Fold events stored behind the watermark, in the caller's transaction. Returns how many.

    A replay from quarantine stores events with their original receipt time, which the
    watermark (in receive order) has usually passed: the next advance would never see them.
    Those behind it are folded here, under the watermark's lock; the rest are left to the next
    advance. The generation changes, because rollup contents change under the same watermark
    and cached rollup reads are keyed by both.
    """
    if not event_pks:
        return 0
    with transaction.atomic():
        mark = _lock_watermark()
        if mark.received_at is None:  # nothing folded yet: the next advance takes everything
            return 0
        set_local_utc()  # not _tune_session(): the caller's commit must stay synchronous
        below, params = _range_where(
            RollupWatermark(received_at=None), (mark.received_at, mark.event_pk)
        )
        ids = ", ".join(["%s"] * len(event_pks))
        count = _create_source("rollup_behind", f"{below} AND id IN ({ids})", [*params, *event_pks])
        if count:
            _fold_metrics("rollup_behind")
            _fold_first_seen("rollup_behind")
            _fold_active_users("rollup_behind")
            _fold_sessions("rollup_behind")
            mark.events_rolled_up += count
            mark.generation = uuid.uuid4()
            mark.save(update_fields=["events_rolled_up", "generation", "updated_at"])
        _drop_source("rollup_behind")
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

    A partial rebuild keeps the watermark: it deletes the buckets from `since`, refolds the
    events of those buckets that are under the watermark, and recomputes the sessions and
    first-seen rows of the sessions and users those events touch. Weekly buckets (product
    totals, user bitmaps) are deleted from the week of `since`; that week's days before
    `since` come back from the kept daily rows.
    """
    started = time.monotonic()
    received_at, _ = watermark_get()
    if since is None or received_at is None:
        with transaction.atomic():
            _lock_watermark()
            _rollups_empty()
            RollupWatermark.objects.filter(name=WATERMARK_NAME).update(
                received_at=None, event_pk=0, events_rolled_up=0, generation=uuid.uuid4()
            )
        run = rollups_advance(now=now, batch=batch, max_seconds=float("inf"))
        _rollups_analyze()
        return RollupRun(run.events, run.batches, time.monotonic() - started, run.watermark)
    since_at = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    with transaction.atomic():
        mark = _lock_watermark()
        _tune_session()
        mark.generation = uuid.uuid4()
        mark.save(update_fields=["generation", "updated_at"])
        upper = (mark.received_at, mark.event_pk)
        below, params = _range_where(RollupWatermark(received_at=None), upper)
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
        _product_totals_add("week", "rollup_rebuild_week")
        for field, model in PRODUCT_WEEK_BY.items():
            model.objects.filter(bucket__gte=week_at).delete()
            _product_dimension_weeks_add(field, "rollup_rebuild_week")
        _drop_source("rollup_rebuild_week")
        count = _create_source(
            "rollup_rebuild", f"{below} AND timestamp >= %s", [*params, since_at]
        )
        _fold_metrics("rollup_rebuild")
        # Sessions and users touched from `since` on are recomputed from all their events.
        touched = "session_id IN (SELECT session_id FROM rollup_rebuild)"
        _session_metric_delta("-", touched)
        sql_execute(f"DELETE FROM {_table(SessionRollup)} WHERE {touched}")
        _create_source("rollup_rebuild_sessions", f"{below} AND {touched}", params)
        _fold_sessions("rollup_rebuild_sessions")
        # Touched users keep their keys (older bitmaps hold them); their first-seen times are
        # recomputed, then the buckets from `since` get their active users again.
        users = "user_id IN (SELECT user_id FROM rollup_rebuild)"
        _create_source("rollup_rebuild_users", f"{below} AND {users}", params)
        first_seen_recompute("rollup_rebuild_users", since_at)
        _fold_active_users("rollup_rebuild")
        _drop_source("rollup_rebuild", "rollup_rebuild_sessions", "rollup_rebuild_users")
    run = rollups_advance(now=now, batch=batch, max_seconds=float("inf"))
    _rollups_analyze()
    return RollupRun(count + run.events, run.batches + 1, time.monotonic() - started, run.watermark)
