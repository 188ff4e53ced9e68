"""Detection benchmark: do the default checks catch real incidents, and stay quiet otherwise?

    .venv/bin/python benchmarks/quality_detection.py                 # 2 weeks at 200k/week
    .venv/bin/python benchmarks/quality_detection.py --per-week 1000000 --plants 0

What it does, then drops what it made (issue 12 §1, ADR 0020):
1. creates and migrates a scratch database (`<your database>_detection`), loads the default
   rules and checks, and generates `--weeks` weeks of shop traffic ending at the anchor (the
   latest Thursday 14:00 UTC at least a day ago, so runs on different days compare);
2. replays the last clean week hour by hour: every default check judged as of each hour
   (the database as of that moment), then the runs recorded in time order through the
   incident policy; prints the failing runs per check (false alarms), the incidents they
   would open, and the alerts sent;
3. for each planted time (`--plants`, hours before the anchor) and each incident kind of
   `events.sample_data.scenarios`: history up to that time, then the next hour of traffic,
   broken in the kind's way, arriving while the scheduler runs each check on its interval;
   prints whether a check failed within the hour (recall), which one, after how many of its
   scheduled runs and minutes (time to detect), and the alerts sent.
Done when every kind is caught within two scheduled runs and the clean week has at most one
false alarm. Figures are counts, not timings, so the machine's load does not move them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.generate import database_create, database_drop  # noqa: E402

RUNS_ALLOWED = 2
FALSE_ALARMS_ALLOWED = 1


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-week", type=int, default=200_000, help="events per week")
    parser.add_argument("--weeks", type=int, default=2, help="history (the last is replayed)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--plants", default="0,29,120", help="plant times, hours before anchor")
    parser.add_argument("--kinds", default="", help="comma-separated scenario names (all)")
    parser.add_argument("--replay-hours", type=int, default=168)
    parser.add_argument("--db", default="")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5432")
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if not args.db:
        current = os.environ.get("DATABASE_URL", "").rsplit("/", 1)[-1] or "analytics"
        args.db = f"{current}_detection"
    return args


def anchor_time(now: dt.datetime) -> dt.datetime:
    """The latest Thursday 14:00 UTC at least a day before `now`."""
    moment = (now - dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    moment = moment.replace(hour=14) if moment.hour >= 14 else moment - dt.timedelta(days=1)
    moment = moment.replace(hour=14)
    return moment - dt.timedelta(days=(moment.weekday() - 3) % 7)


def _django(args: argparse.Namespace) -> None:
    os.environ.update(
        DATABASE_URL=f"postgres://{args.user}@{args.host}:{args.port}/{args.db}",
        ENVIRONMENT="development",
        LOG_LEVEL="ERROR",
        DB_ROLE="worker",  # a batch job: the worker's statement timeout, not the web's 15 s
        DJANGO_SETTINGS_MODULE="analytics_site.settings",
    )
    os.environ.setdefault("SECRET_KEY", "detection-benchmark")
    os.environ.pop("REDIS_URL", None)  # alerts stay in the (rolled back) outbox
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _load(args: argparse.Namespace, anchor: dt.datetime):
    from events.sample_data import SampleConfig
    from events.sample_data.load import sample_data_load, tables_analyze
    from quality.services.defaults import defaults_load

    defaults_load()
    config = SampleConfig(
        events=args.per_week * args.weeks, end=anchor, seed=args.seed, days=7 * args.weeks
    )
    started = time.perf_counter()
    summary = sample_data_load(config, workers=2)
    tables_analyze()
    print(f"generated {args.weeks} weeks ending {anchor:%a %Y-%m-%d %H:%M} UTC in "
          f"{time.perf_counter() - started:.0f} s: accepted {summary.accepted:,}, "
          f"rejected {summary.rejected:,}")  # fmt: skip
    return config


def _print_replay(report, checks) -> int:
    weeks = report.hours / 168
    print(f"\nclean replay: {report.hours} hours ({weeks:.2f} weeks), {len(checks)} checks")
    failing_runs = sum(len(moments) for moments in report.failures.values())
    for name, moments in sorted(report.failures.items()):
        when = ", ".join(f"{moment:%a %H:%M}" for moment in sorted(moments)[:6])
        print(f"  {name:<38} failed {len(moments):>3} of {report.hours} hours ({when})")
    if not report.failures:
        print("  no check failed")
    costs = sorted(report.mean_ms.items(), key=lambda item: -item[1])[:5]
    print("  slowest (mean ms per run): " + ", ".join(f"{n} {ms:.0f}" for n, ms in costs))
    print(f"false alarms: {failing_runs} failing check-hours = {failing_runs / weeks:.2f} per "
          f"week; incidents opened {report.episodes}; alerts sent {sum(report.alerts.values())} "
          f"{dict(sorted(report.alerts.items()))}")  # fmt: skip
    return failing_runs


def _print_plants(results) -> bool:
    by_kind: dict[str, list] = {}
    for result in results:
        by_kind.setdefault(result.kind, []).append(result)
    print(f"\n{'kind':<18} {'recall':>7} {'runs':>5} {'minutes':>8} {'alerts':>6}  caught by")
    ok = True
    for kind, rows in by_kind.items():
        caught = [row for row in rows if row.runs is not None]
        worst = max((row.runs for row in caught), default=None)
        minutes = statistics.median(row.minutes for row in caught) if caught else None
        alerts = sum(sum(row.alerts.values()) for row in rows)
        names = sorted({row.detected_by for row in caught})
        ok &= len(caught) == len(rows) and worst is not None and worst <= RUNS_ALLOWED
        shown = f"{minutes:g}" if minutes is not None else "-"
        recall = f"{len(caught)}/{len(rows)}"
        print(f"{kind:<18} {recall:>7} {worst or '-':>5} {shown:>8} {alerts:>6}  "
              f"{', '.join(names)}")  # fmt: skip
    return ok


def main() -> None:
    args = _args()
    anchor = anchor_time(dt.datetime.now(dt.UTC))
    database_create(args)
    try:
        _django(args)
        config = _load(args, anchor)
        _run(args, config, anchor)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            database_drop(args)


def _run(args: argparse.Namespace, config, anchor: dt.datetime) -> None:
    from benchmarks._detection_sim import clean_replay, plant_run
    from events.sample_data.incident import hour_items
    from events.sample_data.scenarios import SCENARIOS, scenario_apply
    from quality.models import QualityCheck

    checks = list(QualityCheck.objects.filter(enabled=True).order_by("name"))
    started = time.perf_counter()
    report = clean_replay(checks, anchor, args.replay_hours)
    print(f"(replay took {time.perf_counter() - started:.0f} s)")
    failing_runs = _print_replay(report, checks)
    kinds = [kind for kind in args.kinds.split(",") if kind] or list(SCENARIOS)
    results = []
    started = time.perf_counter()
    for hours_before in [int(value) for value in args.plants.split(",") if value]:
        start = anchor - dt.timedelta(hours=hours_before)
        clean = hour_items(config, start)
        start_ms = int(start.timestamp() * 1000)
        print(f"plant at {start:%a %Y-%m-%d %H:%M} UTC: {len(clean):,} events in the hour")
        for kind in kinds:
            items = scenario_apply(kind, clean, seed=args.seed, start_ms=start_ms)
            results.append(plant_run(checks, kind, start, items))
    print(f"(plants took {time.perf_counter() - started:.0f} s)")
    caught_all = _print_plants(results)
    weeks = report.hours / 168
    verdict = caught_all and failing_runs / weeks <= FALSE_ALARMS_ALLOWED
    print(f"\ndone-when (every kind within {RUNS_ALLOWED} runs, <= {FALSE_ALARMS_ALLOWED} false "
          f"alarm per week): {'MET' if verdict else 'NOT MET'}")  # fmt: skip


if __name__ == "__main__":
    main()
