"""Dashboard benchmark: selectors on rollups (+ raw tail) next to raw GROUP BY over events.

    .venv/bin/python benchmarks/dashboard.py --events 1000000      # or: make bench-dashboard

What it does:
1. creates and migrates a scratch PostgreSQL database (`analytics_bench_dash`), and loads
   --events events server-side (INSERT ... SELECT FROM generate_series: sessions of up to six
   events over --days days, 2% of them received hours late, 1% with warnings);
   --reuse keeps an existing load of at least that size;
2. rebuilds the rollups and prints the fold rate (events/s, the issue's bar is 40,000/s);
   with --reuse --no-rebuild, rollups already built are only advanced past their watermarks;
3. for each preset, times every selector (p50/p95 over --runs) on rollups, once fully rolled up
   and once with a raw tail of --tail fresh events after the watermark (half of them there when
   the fold shared its tail summary, half after), each three ways: cold (nothing cached: a
   flushed cache or a restarted worker), after fold (a view not read since the last fold: its
   rollup reads are not cached, the tail summary is the one the rollup task shared, extended
   by the events after it) and warm (the same read again); and the page views
   through django.test.Client with a logged-in user (template rendering included) when
   reports.urls has them, and their htmx partials (`partial <page>`: the same URL with the
   HX-Request header, which renders only the swapped region);
4. times the same numbers computed by raw GROUP BY over events (fewer runs: it is slow) and
   prints the ratio.

The machine's cores are shared with PostgreSQL and possibly other work: figures are a floor.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_DASH_DB", "analytics_bench_dash")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
TARGET_MS = 100.0
CHUNK = 1_000_000
REJECTED_EVERY = 200  # 0.5% of the load is rejected events

STEP_SQL = (
    "CASE event_type WHEN 'page_view' THEN 1 WHEN 'product_view' THEN 2 WHEN 'add_to_cart' "
    "THEN 3 WHEN 'checkout_start' THEN 4 WHEN 'purchase' THEN 5 ELSE 0 END"
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


def _load_sql() -> str:
    """Sessions of six event slots; session depth sets how far down the funnel it goes."""
    sql = """
    INSERT INTO events_event (event_id, event_type, timestamp, client_timestamp, received_at,
        user_id, session_id, device_type, country, page_url, referrer, product_id, category,
        price, quantity, currency, order_id, revenue, search_query, properties, warnings)
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
             ELSE '[]'::jsonb END
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
    return sql.replace(" % ", " %% ")


def _load_rejected_sql() -> str:
    """One rejected event per REJECTED_EVERY events, received over the same days: a tenth
    of them already replayed, the rest in quarantine, failing one or two of three rules."""
    sql = """
    INSERT INTO events_rejectedevent (event_id, event_type, raw_payload, raw_truncated, reasons,
        rule_ids, received_at, status, replay_count, replayed_at)
    SELECT gen_random_uuid()::text,
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
        CASE WHEN i % 10 = 0 THEN now() - interval '1 hour' END
    FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS i
    """
    return sql.replace(" % ", " %% ")


def timed(function: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


# ---------------------------------------------------------------------------------------------
# Raw GROUP BY equivalents (what a dashboard without rollups would run).


def raw_queries(f) -> dict[str, Callable[[], object]]:
    from django.db import connection

    def run(sql: str, params: list) -> list:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def where(period) -> tuple[str, list]:
        clauses, params = ["timestamp >= %s", "timestamp < %s"], [period.start, period.end]
        if period.device:
            clauses.append("device_type = %s")
            params.append(period.device)
        if period.country:
            clauses.append("country = %s")
            params.append(period.country)
        return " AND ".join(clauses), params

    def totals(period) -> None:
        w, p = where(period)
        run(
            "SELECT date_trunc(%s, timestamp, 'UTC'), event_type, COUNT(*), SUM(revenue), "
            f"COUNT(*) FILTER (WHERE warnings <> '[]'::jsonb) FROM events_event WHERE {w} "
            "GROUP BY 1, 2",
            [period.bucket, *p],
        )
        run(f"SELECT COUNT(DISTINCT user_id) FROM events_event WHERE {w}", p)

    def sessions(period) -> None:
        w, p = where(period)
        run(
            "WITH firsts AS (SELECT DISTINCT ON (session_id) session_id, timestamp, device_type, "
            "country FROM events_event ORDER BY session_id, timestamp, id), steps AS ("
            f"SELECT session_id, MAX({STEP_SQL}) AS step FROM events_event GROUP BY session_id) "
            "SELECT step, COUNT(*) FROM firsts JOIN steps USING (session_id) "
            f"WHERE {w} GROUP BY step",
            p,
        )

    def products() -> None:
        w, p = where(f)
        run(
            "SELECT product_id, event_type, COUNT(*), SUM(revenue) FROM events_event "
            f"WHERE {w} AND event_type IN ('product_view','add_to_cart','purchase') GROUP BY 1, 2",
            p,
        )
        run(
            "SELECT category, SUM(revenue) FROM events_event "
            f"WHERE {w} AND event_type = 'purchase' GROUP BY 1",
            p,
        )
        sessions(f)

    def audience() -> None:
        w, p = where(f)
        for field in ("device_type", "country"):
            run(
                f"SELECT {field}, COUNT(*), COUNT(DISTINCT user_id) FROM events_event "
                f"WHERE {w} GROUP BY 1",
                p,
            )
        run(
            f"WITH active AS (SELECT DISTINCT user_id FROM events_event WHERE {w}), firsts AS ("
            "SELECT user_id, MIN(timestamp) AS first FROM events_event GROUP BY user_id) "
            "SELECT COUNT(*) FILTER (WHERE first >= %s), COUNT(*) FROM active "
            "JOIN firsts USING (user_id)",
            [*p, f.start],
        )

    return {
        "overview": lambda: (totals(f), totals(f.previous()), sessions(f), sessions(f.previous())),
        "funnel": lambda: sessions(f),
        "products": products,
        "audience": audience,
    }


def tail_add(count: int) -> None:
    """Freshly received events (after the watermark), like live traffic: timestamps in the last
    ten minutes, 2% of them late by hours, across devices, countries and products, in sessions
    of five events, each session of one user on one device in one country (until 2026-11-26
    every event had its own user: 5,000 users in 1,000 sessions, which no tracker sends, and
    5,000 user-key probes per cold read instead of 1,000)."""
    from django.db import connection

    prefix = f"t{time.monotonic_ns() % 1_000_000}_"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_event (event_id, event_type, timestamp, client_timestamp, "
            "received_at, user_id, session_id, device_type, country, page_url, referrer, "
            "product_id, category, currency, order_id, revenue, search_query, properties, "
            "warnings) SELECT gen_random_uuid(), (ARRAY['page_view','product_view','add_to_cart',"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--raw-runs", type=int, default=3)
    parser.add_argument("--tail", type=int, default=5_000)
    parser.add_argument(
        "--presets",
        default="24h,7d,30d,30d&device=mobile,90d,90d&device=mobile",
        help="comma-separated presets, each optionally with &device=...&country=... filters",
    )
    parser.add_argument("--ingest", type=int, default=400_000, help="events for the fold rate")
    parser.add_argument("--reuse", action="store_true", help="keep a load of at least this size")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument(
        "--no-rebuild",
        action="store_true",
        help="with --reuse: fold only the events after the rollup watermarks, if rollups exist",
    )
    parser.add_argument(
        "--reads", default="", help="time only these reads, e.g. 'live,quality_page,page live'"
    )
    parser.add_argument(
        "--burst", type=int, default=0, help="then time again after a burst of this many events"
    )
    parser.add_argument(
        "--intake-only",
        "--receipts-only",
        action="store_true",
        help="build and fold only the intake rollups (enough for --reads live,quality_page)",
    )
    args = parser.parse_args()

    database_prepare(args.events, args.days, args.reuse)
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ["ENVIRONMENT"] = "testing"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.urls import NoReverseMatch, reverse
    from django.utils import timezone

    from quality import selectors as quality_selectors
    from quality.services import intake
    from reports.filters import filters_from_query
    from reports.models.grains import ALL_MODELS
    from reports.selectors import pages as selectors
    from reports.selectors.tail import read_snapshot
    from reports.selectors.tail_summary import (
        summary_to_cache,
        tail_summaries_clear,
        tail_summary_share,
    )
    from reports.selectors.watermark import watermark_get
    from reports.services import rollups

    # As analytics_site.wsgi does in every gunicorn worker: what is loaded by now lives as long
    # as the process, so full garbage collections skip it (without this, a collection during a
    # timed read walks all of Django and adds 40-50 ms to that read; the servers never pay it).
    gc.freeze()

    soon = timezone.now() + dt.timedelta(minutes=5)
    intake_built = quality_selectors.intake_marks().events.received_at
    built = not watermark_get().is_start and intake_built
    if args.no_rebuild and built:
        # the rollups of a reused load are current up to their watermarks: fold what came after
        folded = 0
        if not args.intake_only:
            folded = rollups.rollups_advance(now=soon, max_seconds=float("inf")).events
        intake_run = intake.intake_advance(now=soon, max_seconds=float("inf"))
        print(
            f"no rebuild: folded {folded:,} events and {intake_run.rows:,} intake rows "
            "after the watermarks"
        )
        # planner statistics, as autovacuum keeps them in a deployment (a rebuild analyzes;
        # a server with autovacuum off never would)
        with connection.cursor() as cursor:
            tables = ", ".join(model._meta.db_table for model in ALL_MODELS)
            cursor.execute(f"ANALYZE {tables}")
    else:
        if not args.intake_only:
            started = time.perf_counter()
            run = rollups.rollups_rebuild(now=soon)
            elapsed = time.perf_counter() - started
            print(
                f"rollup rebuild: {run.events:,} events in {elapsed:.1f} s "
                f"({run.events / elapsed:,.0f} events/s; bar: 40,000 events/s)"
            )
        intake_run = intake.intake_rebuild(now=soon)
        print(
            f"intake rollup rebuild: {intake_run.rows:,} events and rejected events in "
            f"{intake_run.seconds:.1f} s "
            f"({intake_run.rows / intake_run.seconds:,.0f} rows/s)"
        )

    client = Client()
    user, _ = get_user_model().objects.get_or_create(username="bench")
    client.force_login(user)
    pages = {}
    for name in ("overview", "funnel", "products", "audience", "live", "quality"):
        with contextlib.suppress(NoReverseMatch):
            pages[name] = reverse(f"reports:{name}")

    def selector_calls(f) -> dict[str, Callable[[], object]]:
        return {
            "overview": lambda: selectors.overview(f),
            "funnel": lambda: selectors.funnel(f),
            "funnel by device": lambda: selectors.funnel(f, "device"),
            "products": lambda: selectors.products(f),
            "audience": lambda: selectors.audience(f),
            "live": lambda: selectors.live(),
            "quality_page": lambda: selectors.quality_page(f),
        }

    def page_calls(query: str) -> dict[str, Callable[[], object]]:
        def get(url: str, headers: dict[str, str]) -> Callable[[], object]:
            def call() -> None:
                response = client.get(url, headers=headers)
                assert response.status_code == 200, (url, response.status_code)

            return call

        calls = {}
        for name, url in pages.items():
            calls[f"page {name}"] = get(f"{url}?{query}", {})
            # what a filter change or the live poll asks for: the page's htmx partial
            calls[f"partial {name}"] = get(f"{url}?{query}", {"HX-Request": "true"})
        return calls

    def cold(call: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            cache.clear()  # nothing cached for this rollup state (a flushed cache)
            tail_summaries_clear()  # nor a summary of the raw tail, not even known user keys
            return call()

        return run

    shared: list = []  # the tail summary the last fold shared (what the rollup task does)

    def after_fold(call: Callable[[], object]) -> Callable[[], object]:
        """A view nobody has read since the fold: its rollup reads are not cached (filtered
        views and custom ranges never are; the task warms only the unfiltered presets), but
        the task shared its tail summary, which the read extends with what came since."""

        def run() -> object:
            cache.clear()
            tail_summaries_clear()
            for summary in shared:
                summary_to_cache(summary)
            return call()

        return run

    def fold_share() -> None:
        """What the rollup task does after a fold: share the tail's summary."""
        with read_snapshot():
            summary = tail_summary_share()
        shared[:] = [summary] if summary is not None else []

    def folds_run(now: dt.datetime, max_seconds: float = 25.0):
        """What the beat schedule runs: dashboard rollups, then intake rollups (timed apart)."""
        intake_run = intake.intake_advance(now=now, max_seconds=max_seconds)
        print(f"  intake rollups: folded {intake_run.rows:,} rows in {intake_run.seconds:.2f} s")
        if args.intake_only:
            return None
        return rollups.rollups_advance(now=now, max_seconds=max_seconds)

    wanted = {name.strip() for name in args.reads.split(",") if name.strip()}
    states = ["rolled up", f"+{args.tail:,} tail"]
    if args.burst:
        states += [f"+{args.burst:,} burst", "burst folded"]
    results: list[tuple] = []  # (state, preset, read, cold, after fold, warm)
    raw_results: dict[tuple[str, str], tuple[float, float]] = {}
    for tail_label in states:
        if tail_label.endswith(" tail"):
            # half of the tail was there when the fold shared its summary, half came after
            tail_add(args.tail // 2)
            fold_share()
            tail_add(args.tail - args.tail // 2)
        elif tail_label.endswith(" burst"):
            tail_add(args.burst)
        elif tail_label == "burst folded":
            folds_run(timezone.now() + dt.timedelta(minutes=5), float("inf"))
            fold_share()
        else:
            fold_share()
        for preset in args.presets.split(","):
            f = filters_from_query(dict(parse_qsl(f"preset={preset}")))
            calls = {**selector_calls(f), **page_calls(f.as_query())}
            for name, call in calls.items():
                if wanted and name not in wanted:
                    continue
                cold_times = timed(cold(call), args.runs)
                fold_times = timed(after_fold(call), args.runs)
                call()  # warm the cache, as the rollup task does after each fold
                warm_times = timed(call, args.runs)
                results.append((tail_label, preset, name, cold_times, fold_times, warm_times))
            if tail_label == "rolled up" and not args.skip_raw:
                for name, call in raw_queries(f).items():
                    raw_results[(preset, name)] = timed(call, args.raw_runs)

    print(
        f"\n{args.events:,} events over {args.days} days; ms over {args.runs} runs. cold = nothing "
        "cached (Django cache cleared, no tail summary: a flushed cache or a restarted worker); "
        "after fold = a view not read since the last fold (rollup reads not cached; the tail "
        "summary the fold task shared, extended by the events that came after it); warm = the "
        "same read again"
    )
    print(
        f"{'state':<14}{'preset':<20}{'read':<18}{'cold p50':>9}{'p95':>8}{'fold p50':>9}"
        f"{'p95':>8}{'warm p50':>9}{'p95':>8}{'raw p50':>10}{'raw/cold':>9}"
    )
    over = {"cold": 0, "after fold": 0, "warm": 0}
    for tail_label, preset, name, (c50, c95), (f50, f95), (w50, w95) in results:
        raw = raw_results.get((preset, name))
        raw_text = (
            f"{raw[0]:>10.0f}{raw[0] / c50:>8.0f}x" if raw and tail_label == "rolled up" else ""
        )
        late = [
            label
            for label, p95 in (("cold", c95), ("after fold", f95), ("warm", w95))
            if p95 >= TARGET_MS
        ]
        for label in late:
            over[label] += 1
        flag = f"  (p95 over 100 ms: {', '.join(late)})" if late else ""
        print(
            f"{tail_label:<14}{preset:<20}{name:<18}{c50:>9.1f}{c95:>8.1f}{f50:>9.1f}{f95:>8.1f}"
            f"{w50:>9.1f}{w95:>8.1f}{raw_text}{flag}"
        )
    print(
        f"reads with p95 over {TARGET_MS:.0f} ms, of {len(results)}: "
        + ", ".join(f"{label} {count}" for label, count in over.items())
    )
    rollups_run = folds_run(timezone.now() + dt.timedelta(minutes=5))
    if rollups_run is None:
        return
    print(f"\nfolding the {args.tail:,}-event tail: {rollups_run.seconds * 1000:.0f} ms")
    # Steady state: what one periodic run folds after --ingest events arrived (live traffic:
    # recent timestamps, so buckets are dense, plus the late ones tail_add mixes in).
    tail_add(args.ingest)
    rollups_run = folds_run(timezone.now() + dt.timedelta(minutes=5), float("inf"))
    print(
        f"incremental fold of {rollups_run.events:,} freshly ingested events: "
        f"{rollups_run.seconds:.2f} s ({rollups_run.events / rollups_run.seconds:,.0f} events/s; "
        "bar: 40,000 events/s)"
    )


if __name__ == "__main__":
    main()
