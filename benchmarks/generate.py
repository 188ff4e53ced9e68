"""Sample-data generation benchmark: `manage.py generate_sample_data` direct to PostgreSQL.

    .venv/bin/python benchmarks/generate.py          # 100k and 1M events
    .venv/bin/python benchmarks/generate.py --full   # also 10M (the issue's < 3 minutes target)

What it does, then stops and drops what it made:
1. creates and migrates a scratch database (`analytics_bench_gen` by default);
2. for each size, empties events_event and events_rejectedevent, runs the command as a user
   would (a subprocess, default options: 2 worker processes, bad/duplicate/late rates), and
   reads its printed summary; then reruns the smallest size with the same seed to time the
   idempotent path (every good event conflicts, nothing is added);
3. prints wall time, events/s and the ratio to the issue's target (10M in 180 s), plus the
   table size reached. The indexes of events_event stay in place throughout.

Figures on a 2-core machine shared with other work are noisy; run it on a quiet machine for
numbers to compare.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
TARGET_10M_SECONDS = 180.0


def admin_url(args: argparse.Namespace, dbname: str) -> str:
    return f"postgresql://{args.user}@{args.host}:{args.port}/{dbname}"


def database_create(args: argparse.Namespace) -> None:
    with psycopg.connect(admin_url(args, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db}"')


def database_drop(args: argparse.Namespace) -> None:
    with psycopg.connect(admin_url(args, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')


def scratch_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{args.user}@{args.host}:{args.port}/{args.db}",
        ENVIRONMENT="development",
        LOG_LEVEL="WARNING",
    )
    env.pop("REDIS_URL", None)
    return env


def _manage(env: dict[str, str], *arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def tables_empty(args: argparse.Namespace) -> None:
    with psycopg.connect(admin_url(args, args.db), autocommit=True) as conn:
        conn.execute("TRUNCATE events_event, events_eventkey, events_rejectedevent")


def table_facts(args: argparse.Namespace) -> tuple[int, str]:
    with psycopg.connect(admin_url(args, args.db), autocommit=True) as conn:
        rows, size = conn.execute(
            "SELECT count(*), pg_size_pretty(pg_total_relation_size('events_event')) "
            "FROM events_event"
        ).fetchone()
    return rows, size


def generate(env: dict[str, str], events: int, seed: int, workers: int) -> tuple[float, str]:
    started = time.perf_counter()
    output = _manage(
        env,
        "generate_sample_data",
        "--events",
        str(events),
        "--seed",
        str(seed),
        "--workers",
        str(workers),
        "--quiet",
    )
    return time.perf_counter() - started, output


def _summary_rate(output: str) -> str:
    match = re.search(r"in ([\d.]+) s: ([\d,]+) events/s", output)
    return f"{match.group(2)} events/s in-command ({match.group(1)} s)" if match else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also generate 10,000,000 events")
    parser.add_argument("--db", default="analytics_bench_gen")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5432")
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    sizes = [100_000, 1_000_000] + ([10_000_000] if args.full else [])
    env = scratch_env(args)
    print(f"database {args.db}: create and migrate")
    database_create(args)
    try:
        _manage(env, "migrate", "--noinput", "-v", "0")
        print(f"{'events':>12} {'wall s':>8} {'events/s':>10}  notes")
        for events in sizes:
            tables_empty(args)
            elapsed, output = generate(env, events, seed=42, workers=args.workers)
            rows, size = table_facts(args)
            print(
                f"{events:>12,} {elapsed:>8.1f} {events / elapsed:>10,.0f}  "
                f"{_summary_rate(output)}; events_event {rows:,} rows, {size}"
            )
            if events == 10_000_000:
                print(
                    f"{'':>12} target {TARGET_10M_SECONDS:.0f} s -> "
                    f"{elapsed / TARGET_10M_SECONDS:.2f} of the budget used"
                )
        rerun = sizes[0]
        tables_empty(args)
        generate(env, rerun, seed=7, workers=args.workers)
        elapsed, output = generate(env, rerun, seed=7, workers=args.workers)
        added = re.search(r"accepted\s+([\d,]+)", output)
        print(
            f"{rerun:>12,} {elapsed:>8.1f} {rerun / elapsed:>10,.0f}  rerun with the same seed "
            f"(idempotent path): accepted {added.group(1) if added else '?'}"
        )
    finally:
        if not args.keep:
            database_drop(args)


if __name__ == "__main__":
    main()
