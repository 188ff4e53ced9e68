# SQL is built from our own table and column names only; values are always bound parameters.
# ruff: noqa: S608
"""The set-based SQL of a rollup fold: copy a source set of events into a temp table, then fold
it into the metric, product and session tables with additive upserts (user bitmaps:
`reports.services.user_bitmaps`).

Every function runs inside the caller's transaction, which holds the watermark row lock
(`reports.services.rollups`), so folds are serialized and each source set folds once.
Sessions are merged (min/max, first event by (timestamp, id)); session metrics (and their
totals without device and country) stay exact by subtracting a session's old row and adding its
merged row.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from analytics_site.sql import (
    has_warnings_sql,
    is_postgres,
    set_local_utc,
    sql_execute,
    time_bucket,
)
from events.facade import EVENTS_TABLE, person_key_sql
from reports.models import SessionRollup
from reports.models.grains import (
    EVENT_METRIC,
    EVENT_TOTAL,
    FUNNEL_STEPS,
    GRAINS,
    PRODUCT_EVENT_TYPES,
    PRODUCT_METRIC,
    PRODUCT_TOTAL,
    PRODUCT_WEEK_BY,
    SESSION_METRIC,
    SESSION_TOTAL,
)


def fold_transaction_tune() -> None:
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
# Distinct users count people: an event's user is the person its id belongs to (ADR 0015).
PERSON_KEY = person_key_sql()
_PRODUCT_TYPES_SQL = ", ".join(f"'{name}'" for name in PRODUCT_EVENT_TYPES)


# ---------------------------------------------------------------------------------------------
# Source sets of events (temporary tables) and the upserts that fold them in.


def source_create(name: str, where: str, params: list[Any]) -> int:
    """Copy the columns the rollups need for the events matching `where` into a temp table."""
    sql_execute(f"DROP TABLE IF EXISTS {name}")
    sql_execute(
        f"CREATE TEMPORARY TABLE {name} AS "
        f"SELECT id, event_type, timestamp AS ts, {PERSON_KEY} AS user_id, session_id, "
        "device_type, country, "
        "product_id, category, revenue, "
        f"CASE WHEN {has_warnings_sql()} THEN 1 ELSE 0 END AS warned, "
        f"{_STEP_CASE} AS step, "
        f"{time_bucket('timestamp', 'hour')} AS hour, {time_bucket('timestamp', 'day')} AS day "
        f"FROM {EVENTS_TABLE} WHERE {where}",
        params,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {name}")
        return cursor.fetchone()[0]


def sources_drop(*names: str) -> None:
    for name in names:
        sql_execute(f"DROP TABLE IF EXISTS {name}")


def metrics_fold(source: str, sign: str = "") -> None:
    """Additive tables: event and product metrics and their totals without device and country
    (user bitmaps: reports.services.user_bitmaps). `sign` "-" subtracts the source instead
    (an erasure takes a person's events out).

    The source is aggregated once per hour (with its day) into small temp tables; hourly rows
    come from those directly and daily rows from summing them, so the batch is scanned once
    per table family, not once per grain.
    """
    sql_execute("DROP TABLE IF EXISTS rollup_agg_events")
    sql_execute(
        "CREATE TEMPORARY TABLE rollup_agg_events AS "
        f"SELECT hour, day, event_type, device_type, country, {sign}COUNT(*) AS events, "
        f"{sign}SUM(warned) AS warned, "
        f"{sign}COALESCE(SUM(CASE WHEN event_type = 'purchase' THEN revenue END), 0) AS revenue "
        f"FROM {source} GROUP BY hour, day, event_type, device_type, country"
    )
    sql_execute("DROP TABLE IF EXISTS rollup_agg_products")
    sql_execute(
        "CREATE TEMPORARY TABLE rollup_agg_products AS "
        "SELECT hour, day, product_id, category, event_type, device_type, country, "
        f"{sign}COUNT(*) AS events, {sign}COALESCE(SUM(revenue), 0) AS revenue "
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
        product_totals_add(grain, "rollup_agg_products")
    for field in PRODUCT_WEEK_BY:
        product_dimension_weeks_add(field, "rollup_agg_products")
    sources_drop("rollup_agg_events", "rollup_agg_products")


def product_dimension_weeks_add(field: str, source: str) -> None:
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


def product_totals_add(grain: str, source: str) -> None:
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


def session_metrics_delta(sign: str, where: str) -> None:
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
    sources_drop(cells)


def sessions_fold(source: str) -> None:
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
    session_metrics_delta("-", affected)
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
    session_metrics_delta("+", affected)
    sources_drop(delta)
