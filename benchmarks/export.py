"""Raw export benchmark: `manage.py export_events` to JSONL and Parquet next to raw COPY.

    .venv/bin/python benchmarks/export.py                  # 1,000,000 events
    .venv/bin/python benchmarks/export.py --events 20000   # a quick proof that it runs

What it does, then stops and drops what it made:
1. creates and migrates a scratch database (`analytics_bench_export` by default) and fills it
   with `manage.py generate_sample_data --events N` (the bulk loader; a few percent of the
   generated events are bad ones, kept in quarantine, so slightly fewer than N are stored);
2. runs each export as a user would, in a child process (`export_events --format F --out
   FILE --no-progress`), and reads that child's own peak RSS from `os.wait4`;
3. in the same run, the references: psql `\\copy (SELECT ... ORDER BY timestamp, id) TO FILE`
   as text and as `row_to_json` lines (what PostgreSQL alone needs to hand the rows out);
4. prints wall time, events/s, the child's peak RSS, the file size and the ratio to COPY.

The peak RSS of a Python child includes the interpreter and Django (about 60-80 MB before the
first row); what matters is that it stays flat as N grows (keyset batches of 2,000 rows).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The scratch database and its environment, as generate.py makes them.
from benchmarks.generate import (  # noqa: E402
    admin_url,
    database_create,
    database_drop,
    scratch_env,
)

ORDER = "ORDER BY timestamp, id"


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, from its own rusage."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    stderr = process.stderr.read() if process.stderr else b""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr.decode()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024  # Linux: kilobytes


def _manage(env: dict[str, str], *arguments: str) -> None:
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


def stored_events(args: argparse.Namespace) -> int:
    with psycopg.connect(admin_url(args, args.db), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM events_event").fetchone()[0]


def _line(
    name: str, rows: int, seconds: float, rss: float, path: Path, copy_rate: float, startup: float
) -> str:
    """One result; events/s net of the child's start-up (Django, imports) when given."""
    rate = rows / max(seconds - startup, 1e-9)
    ratio = f"{rate / copy_rate:.2f}" if copy_rate else "-"
    size = path.stat().st_size / 2**20
    return f"{name:<30} {seconds:>8.2f} {rate:>12,.0f} {rss:>10.1f} {size:>10.1f} {ratio:>8}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl,parquet", help="comma-separated")
    parser.add_argument("--db", default="analytics_bench_export")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5432")
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    env = scratch_env(args)
    print(f"database {args.db}: create, migrate, generate {args.events:,} events")
    database_create(args)
    try:
        _manage(env, "migrate", "--noinput", "-v", "0")
        _manage(env, "generate_sample_data", "--events", str(args.events), "--quiet")
        rows = stored_events(args)
        print(f"{rows:,} events stored\n")
        print(
            f"{'export':<30} {'wall s':>8} {'events/s':>12} {'peak MB':>10} "
            f"{'file MB':>10} {'vs COPY':>8}"
        )
        with tempfile.TemporaryDirectory(prefix="bench_export_") as scratch:
            folder = Path(scratch)
            psql = ["psql", "-X", "-q", admin_url(args, args.db), "-c"]
            copy_path = folder / "copy.txt"
            sql = f"\\copy (SELECT * FROM events_event {ORDER}) TO '{copy_path}'"
            seconds, rss = run_measured([*psql, sql], env)
            copy_rate = rows / seconds
            print(_line("COPY TO STDOUT (text, psql)", rows, seconds, rss, copy_path, 0, 0))
            json_path = folder / "copy.jsonl"
            sql = f"\\copy (SELECT row_to_json(e) FROM events_event e {ORDER}) TO '{json_path}'"
            seconds, rss = run_measured([*psql, sql], env)
            print(_line("COPY row_to_json (psql)", rows, seconds, rss, json_path, copy_rate, 0))
            export = [sys.executable, "manage.py", "export_events", "--no-progress"]
            nothing = ["--since", "2999-01-01", "--out", str(folder / "empty.jsonl")]
            startup, rss = run_measured([*export, *nothing], env)
            print(f"{'start-up, no rows':<30} {startup:>8.2f} {'':>12} {rss:>10.1f}")
            for fmt in args.formats.split(","):
                out = folder / f"events.{fmt}"
                seconds, rss = run_measured([*export, "--format", fmt, "--out", str(out)], env)
                name = f"export_events --format {fmt}"
                print(_line(name, rows, seconds, rss, out, copy_rate, startup))
        print("\nexport events/s are net of the start-up row's time; peak MB includes it.")
    finally:
        if not args.keep:
            database_drop(args)


if __name__ == "__main__":
    main()
