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
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# First: this import points Django at the scratch database and sets it up.
from benchmarks._dashboard_load import database_prepare, tail_add  # noqa: E402

# isort: split
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks._dashboard_raw import raw_queries  # noqa: E402
from benchmarks._dashboard_report import results_print, timed  # noqa: E402
from quality import selectors as quality_selectors  # noqa: E402
from quality.services import intake  # noqa: E402
from reports.filters import filters_from_query  # noqa: E402
from reports.models.grains import ALL_MODELS  # noqa: E402
from reports.selectors import pages as selectors  # noqa: E402
from reports.selectors.tail import read_snapshot  # noqa: E402
from reports.selectors.tail_summary import (  # noqa: E402
    summary_to_cache,
    tail_summaries_clear,
    tail_summary_share,
)
from reports.selectors.watermark import watermark_get  # noqa: E402
from reports.services import rollups  # noqa: E402


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
    parser.add_argument(
        "--no-intake",
        action="store_true",
        help="leave the intake rollups unbuilt and the live and quality reads out (at 50M their "
        "fold, with the check rollups, takes over an hour on a shared 2-core machine)",
    )
    args = parser.parse_args()

    database_prepare(args.events, args.days, args.reuse)
    # As analytics_site.wsgi does in every gunicorn worker: what is loaded by now lives as long
    # as the process, so full garbage collections skip it (without this, a collection during a
    # timed read walks all of Django and adds 40-50 ms to that read; the servers never pay it).
    gc.freeze()

    soon = timezone.now() + dt.timedelta(minutes=5)
    intake_built = quality_selectors.intake_marks().events.received_at
    built = not watermark_get().is_start and (intake_built or args.no_intake)
    if args.no_rebuild and built:
        # the rollups of a reused load are current up to their watermarks: fold what came after
        folded = 0
        if not args.intake_only:
            folded = rollups.rollups_advance(now=soon, max_seconds=float("inf")).events
        intake_rows = 0
        if not args.no_intake:
            intake_rows = intake.intake_advance(now=soon, max_seconds=float("inf")).rows
        print(
            f"no rebuild: folded {folded:,} events and {intake_rows:,} intake rows "
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
        if not args.no_intake:
            intake_run = intake.intake_rebuild(now=soon)
            print(
                f"intake rollup rebuild: {intake_run.rows:,} events and rejected events in "
                f"{intake_run.seconds:.1f} s "
                f"({intake_run.rows / intake_run.seconds:,.0f} rows/s)"
            )

    client = Client()
    user, _ = get_user_model().objects.get_or_create(username="bench")
    # the pages need the dashboards permission (roles, analytics_site.access)
    get_user_model().objects.filter(pk=user.pk).update(is_superuser=True)
    user.refresh_from_db()
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
        if not args.no_intake:
            intake_run = intake.intake_advance(now=now, max_seconds=max_seconds)
            print(
                f"  intake rollups: folded {intake_run.rows:,} rows in {intake_run.seconds:.2f} s"
            )
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
                if args.no_intake and ("live" in name or "quality" in name):
                    continue
                cold_times = timed(cold(call), args.runs)
                fold_times = timed(after_fold(call), args.runs)
                call()  # warm the cache, as the rollup task does after each fold
                warm_times = timed(call, args.runs)
                results.append((tail_label, preset, name, cold_times, fold_times, warm_times))
            if tail_label == "rolled up" and not args.skip_raw:
                for name, call in raw_queries(f).items():
                    raw_results[(preset, name)] = timed(call, args.raw_runs)

    results_print(args, results, raw_results)
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
