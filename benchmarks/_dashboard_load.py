"""The dashboard benchmark's data (benchmarks/dashboard.py): a scratch database loaded
server-side with sessions of events and rejected events, and the fresh tail added during a run.

Importing this module points Django at that database and sets it up: the benchmark reads it
through the selectors and pages as the servers do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_DASH_DB", "analytics_bench_dash")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
CHUNK = 1_000_000
REJECTED_EVERY = 200  # 0.5% of the load is rejected events

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
os.environ["ENVIRONMENT"] = "testing"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from events.facade import EVENT_COLUMN_NAMES, EVENTS_TABLE  # noqa: E402

# The columns tail_add fills: every stored column but the two it leaves NULL and the open
# model's five, which take their database defaults ('' anonymous id, no derivations, "api").
TAIL_COLUMNS = tuple(
    name
    for name in EVENT_COLUMN_NAMES
    if name
    not in ("price", "quantity", "anonymous_id", "derived", "source", "original", "client_ip")
)


def _admin_sql(sql: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "ENVIRONMENT": "testing"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )


def database_prepare(events: int, days: int, reuse: bool) -> None:
    url = f"{PG}/{DB_NAME}"
    if reuse:
        try:
            with psycopg.connect(url) as conn:
                count = conn.execute("SELECT COUNT(*) FROM events_event").fetchone()[0]
            if count >= events:  # earlier runs add tail and ingest events on top
                print(f"reusing {DB_NAME} with {count:,} events")
                _migrate(url)  # new rollup tables of this checkout
                return
        except psycopg.Error:
            pass
    _admin_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    _admin_sql(f'CREATE DATABASE "{DB_NAME}"')
    _migrate(url)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        for low in range(0, events, CHUNK):
            high = min(low + CHUNK, events) - 1
            conn.execute(
                _load_sql(),
                {"low": low, "high": high, "days": days, "users": max(events // 20, 1000)},
            )
            conn.execute(
                _load_rejected_sql(),
                {
                    "low": low // REJECTED_EVERY,
                    "high": (high + 1) // REJECTED_EVERY - 1,
                    "days": days,
                },
            )
            print(f"  loaded {high + 1:,} events ({time.perf_counter() - started:.0f} s)")
        conn.execute("VACUUM ANALYZE events_event")
        conn.execute("VACUUM ANALYZE events_rejectedevent")
    elapsed = time.perf_counter() - started
    print(f"load: {events:,} events in {elapsed:.1f} s ({events / elapsed:,.0f} events/s)")


def _load_sql(table: str = EVENTS_TABLE) -> str:
    """Sessions of six event slots; session depth sets how far down the funnel it goes.

    The SELECT list follows `events.facade.EVENT_COLUMN_NAMES`, one value per column. `table`:
    another table of the same columns (benchmarks/partitions.py fills unindexed partitions)."""
    columns = ", ".join(f'"{name}"' for name in EVENT_COLUMN_NAMES)
    sql = (
        f"INSERT INTO {table} ({columns})"
        + """
    SELECT gen_random_uuid(), et, ts, ts,
        LEAST(ts + CASE WHEN h % 50 = 0 THEN make_interval(hours => (1 + h % 48)::int)
                        ELSE make_interval(secs => (1 + h % 5)::float) END,
              now() - interval '1 minute'),
        'user_' || (s * 7919 % %(users)s), 'session_' || s,
        (ARRAY['desktop','mobile','tablet','other'])[1 + (s * 13 % 100) / 34 + (s % 97 = 0)::int],
        (ARRAY['US','DE','GB','FR','NL','SE','JP','BR','IN','CA','ES','IT','PL','MX','AU'])
            [1 + s * 7 % 15],
        '/p/' || pid, '',
        CASE WHEN et IN ('product_view','add_to_cart','purchase') THEN 'sku_' || pid ELSE '' END,
        CASE WHEN et IN ('product_view','add_to_cart','purchase') THEN 'cat_' || pid % 25
             ELSE '' END,
        NULL, NULL, CASE WHEN et = 'purchase' THEN 'USD' ELSE '' END,
        CASE WHEN et = 'purchase' THEN 'o_' || s ELSE '' END,
        CASE WHEN et = 'purchase' THEN (h % 20000) / 100.0 + 5 END,
        CASE WHEN et = 'search' THEN 'shoes' ELSE '' END, '{}'::jsonb,
        CASE WHEN h % 100 = 7 THEN '[{"field":"page_url","rule":"w","message":"w"}]'::jsonb
             ELSE '[]'::jsonb END,
        '', '[]'::jsonb, 'api', NULL, NULL
    FROM (
        SELECT i, s, pos, h, pid, ts,
            CASE WHEN pos = 5 THEN 'search'
                 WHEN pos < depth THEN (ARRAY['page_view','product_view','add_to_cart',
                                              'checkout_start','purchase'])[pos + 1]
                 ELSE 'product_view' END AS et
        FROM (
            SELECT i, i / 6 AS s, i % 6 AS pos, (i * 2654435761) % 1000003 AS h,
                (i / 6 * 40503) % 1000 AS pid,
                CASE WHEN (i / 6 * 2654435761) % 100 < 40 THEN 2
                     WHEN (i / 6 * 2654435761) % 100 < 70 THEN 3
                     WHEN (i / 6 * 2654435761) % 100 < 85 THEN 4 ELSE 5 END AS depth,
                now() - interval '5 minutes'
                    - make_interval(secs => ((i / 6 * 2246822519) % (%(days)s * 86400))::float)
                    + make_interval(secs => ((i % 6) * 41)::float) AS ts
            FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS i
        ) AS slots
    ) AS events
    """
    )
    return sql.replace(" % ", " %% ")


def _load_rejected_sql() -> str:
    """One rejected event per REJECTED_EVERY events, received over the same days: a tenth
    of them already replayed, the rest in quarantine, failing one or two of three rules."""
    sql = """
    INSERT INTO events_rejectedevent (event_id, event_type, raw_payload, raw_truncated, reasons,
        rule_ids, received_at, status, replay_count, replayed_at, attempts, dedupe_key)
    SELECT u::text,
        (ARRAY['purchase','page_view','add_to_cart','product_view','bogus'])[1 + i % 5], '{}',
        false,
        CASE WHEN i % 3 = 0
             THEN '[{"field":"revenue","rule":"revenue-positive","message":"m"}]'
             WHEN i % 3 = 1
             THEN '[{"field":"country","rule":"required (schema)","message":"m"},
                    {"field":"price","rule":"price-range","message":"m"}]'
             ELSE '[{"field":"price","rule":"price-range","message":"m"}]' END::jsonb,
        '[]'::jsonb,
        now() - interval '5 minutes'
            - make_interval(secs => ((i * 2246822519) % (%(days)s * 86400))::float),
        CASE WHEN i % 10 = 0 THEN 'replayed' ELSE 'quarantined' END, (i % 10 = 0)::int,
        CASE WHEN i % 10 = 0 THEN now() - interval '1 hour' END, 1, 'id:' || u::text
    FROM (SELECT i, gen_random_uuid() AS u
          FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS i) AS numbered
    """
    return sql.replace(" % ", " %% ")


def tail_add(count: int) -> None:
    """Freshly received events (after the watermark), like live traffic: timestamps in the last
    ten minutes, 2% of them late by hours, across devices, countries and products, in sessions
    of five events, each session of one user on one device in one country (until 2026-11-26
    every event had its own user: 5,000 users in 1,000 sessions, which no tracker sends, and
    5,000 user-key probes per cold read instead of 1,000)."""
    prefix = f"t{time.monotonic_ns() % 1_000_000}_"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EVENTS_TABLE} ({', '.join(TAIL_COLUMNS)}) "
            "SELECT gen_random_uuid(), (ARRAY['page_view','product_view','add_to_cart',"
            "'checkout_start','purchase'])[1 + i %% 5], "
            "now() - make_interval(secs => (i %% 600)::float) "
            "- CASE WHEN i %% 50 = 0 THEN make_interval(hours => (i %% 30)::int) "
            "ELSE interval '0' END, "
            "now(), clock_timestamp(), 'user_' || (i / 5) * 7 %% 40000, %s || (i / 5), "
            "(ARRAY['desktop','mobile','tablet','other'])[1 + (i / 5) * 7 %% 40000 %% 4], "
            "(ARRAY['US','DE','GB','FR','NL','SE','JP','BR','IN','CA','ES','IT','PL','MX','AU'])"
            "[1 + (i / 5) * 7 %% 40000 %% 15], '/', '', 'sku_' || i * 31 %% 1000, "
            "'cat_' || i * 31 %% 1000 %% 25, "
            "'', '', CASE WHEN i %% 5 = 4 THEN 42.5 END, '', '{}'::jsonb, '[]'::jsonb "
            "FROM generate_series(1, %s) AS i",
            [prefix, count],
        )
