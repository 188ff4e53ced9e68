"""API and dashboard read benchmark: every read endpoint, right after a bulk load and in steady
state, next to a raw GROUP BY reference measured in the same run.

    .venv/bin/python benchmarks/api_reads.py --events 1000000      # the lead runs 1M and 10M
    .venv/bin/python benchmarks/api_reads.py --events 50000 --runs 5  # a quick check

What it does:
1. creates and migrates a scratch PostgreSQL database (`analytics_bench_api`), loads half of
   --events with `generate_sample_data` (which analyzes the tables) and folds both rollup
   families;
2. bulk-loads the other half server-side (INSERT ... SELECT, new event ids, past receipt
   times) with no ANALYZE: the planner's statistics predate half the table;
3. times every read (p50/p95 over --runs, through django.test.Client: /events/stats,
   /events/recent, /health, each dashboard page logged in) in three states: right after the
   load (nothing folded: all new rows are raw tail), after the folds (statistics still stale),
   and steady state (after ANALYZE); next to the raw GROUP BYs that /events/stats used to run.

The machine's cores are shared with PostgreSQL and possibly other work: figures are a floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_API_DB", "analytics_bench_api")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
TARGET_MS = 100.0
PAGES = ("/", "/funnel/", "/products/", "/audience/", "/live/", "/quality/")
API = ("/events/stats", "/events/recent?limit=50", "/health")
RAW_GROUP_BYS = tuple(
    f"SELECT {field}, COUNT(*) FROM events_event GROUP BY 1"
    for field in ("event_type", "device_type", "country")
)
# Copies of stored events with new ids, received in the past (behind any receive-order
# watermark), as a backfill or a restore would write them.
BULK_SQL = """
INSERT INTO events_event (event_id, event_type, timestamp, client_timestamp, received_at,
    user_id, session_id, device_type, country, page_url, referrer, product_id, category, price,
    quantity, currency, order_id, revenue, search_query, properties, warnings)
SELECT gen_random_uuid(), event_type, timestamp - interval '1 day',
    client_timestamp - interval '1 day', received_at - interval '1 day', user_id,
    session_id || '-b', device_type, country, page_url, referrer, product_id, category, price,
    quantity, currency, CASE WHEN order_id = '' THEN '' ELSE order_id || '-b' END, revenue,
    search_query, properties, warnings
FROM events_event ORDER BY id LIMIT %s
"""


def _admin_sql(sql: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _prepare_database() -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    _admin_sql(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True, env=os.environ
    )


def _timed(read: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        read()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def _report(state: str, client, runs: int) -> None:
    from django.db import connection

    print(f"\n{state}")

    def get(path: str) -> Callable[[], object]:
        def read() -> object:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            return response

        return read

    for path in (*API, *PAGES):
        p50, p95 = _timed(get(path), runs)
        flag = "" if p95 < TARGET_MS else "  (over 100 ms)"
        print(f"  {path:<28} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms{flag}")

    def raw() -> None:
        with connection.cursor() as cursor:
            for sql in RAW_GROUP_BYS:
                cursor.execute(sql)
                cursor.fetchall()

    p50, p95 = _timed(raw, max(2, runs // 3))
    print(f"  {'raw GROUP BY x3 (reference)':<28} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ["ENVIRONMENT"] = "development"  # anonymous API reads; pages log in below
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
    sys.path.insert(0, str(ROOT))
    _prepare_database()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from quality.services.intake import intake_advance
    from reports.services.rollups import rollups_advance

    def fold() -> None:
        started = time.perf_counter()
        rows = rollups_advance(max_seconds=float("inf")).events
        rows += intake_advance(max_seconds=float("inf")).rows
        print(f"  folded {rows:,} rows in {time.perf_counter() - started:.1f} s")

    half = args.events // 2
    print(f"loading {half:,} events with generate_sample_data into {DB_NAME}")
    call_command("generate_sample_data", events=half, quiet=True, late_rate=0.02)
    call_command("rebuild_rollups", no_safety_lag=True)
    fold()
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(BULK_SQL, [args.events - half])
        print(f"bulk-loaded {cursor.rowcount:,} events in {time.perf_counter() - started:.1f} s")
    cache.clear()
    _report("right after the bulk load (not folded, no ANALYZE)", client, args.runs)
    fold()
    cache.clear()
    _report("after the folds (statistics still from before the load)", client, args.runs)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    cache.clear()
    _report("steady state (after ANALYZE)", client, args.runs)


if __name__ == "__main__":
    main()
