"""The partitioned events table at scale (issue 15 §6; ADR 0021): insert rates on a given
database, the live conversion's lock, and retention dropping a month of partitions.

    # a fresh scratch database of 50M events over 90 days, set-based (_partitions_fill.py)
    nice .venv/bin/python benchmarks/partitions.py fill --db analytics_bench50m --events 50000000
    # the same in a PostgreSQL of its own with scale/postgresql-tuned.conf (port 5440)
    nice .venv/bin/python benchmarks/partitions.py fill --own-pg /work/pg-b50 --keep ...
    # HTTP ingestion into it and into an empty database, in turns (_partitions_http.py)
    .venv/bin/python benchmarks/partitions.py http --db analytics_bench50m --rounds 3 [--prewarm]
    # retention's drop of its oldest month, then the same on an empty database's
    .venv/bin/python benchmarks/partitions.py drop --db analytics_bench50m --keep-days 60
    # insert rate (the API's statement, in process): single events and batches of 100
    .venv/bin/python benchmarks/partitions.py ingest --db analytics_scale_bench50m
    # the live conversion of a plain table: prepare, then the migration's lock
    .venv/bin/python benchmarks/partitions.py convert --db analytics_scale_bench50m
    # this checkout's migrations on a filled database, with a writer and a lock watch
    .venv/bin/python benchmarks/partitions.py migrate --own-pg /work/pg-b50 --keep --db DB
    # retention: a scratch database of daily partitions, drop those older than 30 days
    .venv/bin/python benchmarks/partitions.py retention --events 1000000 --days 62

`convert`, `retention` and `drop` run a writer inserting one event every 10 ms meanwhile and
print its longest wait: what a client felt while the step held the table's lock. Figures on a
shared 2-core machine are noisy; compare runs made on the same machine in the same hour.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _partitions_probe import LockWatch, WaitProbe
from generate import ROOT, _manage, admin_url, database_create, database_drop, scratch_env


def _facts(args: argparse.Namespace) -> str:
    with psycopg.connect(admin_url(args, args.db), autocommit=True) as conn:
        rows, size, kind = conn.execute(
            "SELECT COALESCE((SELECT sum(greatest(reltuples, 0))::bigint FROM pg_inherits "
            "JOIN pg_class ON pg_class.oid = inhrelid "
            "WHERE inhparent = 'events_event'::regclass), "
            "(SELECT reltuples::bigint FROM pg_class WHERE relname = 'events_event')), "
            "pg_size_pretty(pg_database_size(current_database())), "
            "(SELECT relkind FROM pg_class WHERE relname = 'events_event')"
        ).fetchone()
    shape = "partitioned" if kind == "p" else "plain"
    return f"events_event {shape}, ~{rows or 0:,} rows, database {size}, {_huge_pages()}"


def _huge_pages() -> str:
    """Whether shared buffers can sit in huge pages (`huge_pages = try` in the tuned settings
    takes them only if `vm.nr_hugepages` reserved enough before the server started)."""
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    total = int(meminfo.get("HugePages_Total", "0").strip())
    free = int(meminfo.get("HugePages_Free", "0").strip())
    size = meminfo.get("Hugepagesize", "").strip()
    return f"huge pages {total - free} of {total} in use ({size} each)"


def _probe(env: dict[str, str], *arguments: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "_partitions_probe.py"), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def ingest(args: argparse.Namespace) -> None:
    env = scratch_env(args)
    print(_facts(args))
    for batch in (1, 100):
        rate = _probe(env, "rate", str(args.seconds), str(batch))
        print(
            f"batch {batch:>3}: {rate['events_per_s']:>8,.0f} events/s, statement median "
            f"{rate['median_ms']:.2f} ms, p99 {rate['p99_ms']:.2f} ms ({rate['statements']:,})"
        )


def _timed(env: dict[str, str], args: argparse.Namespace, label: str, *command: str) -> None:
    probe = WaitProbe(admin_url(args, args.db))
    probe.start()
    started = time.perf_counter()
    output = _manage({**env, "DB_ROLE": "worker"}, *command)
    elapsed = time.perf_counter() - started
    probe.stop()
    print(
        f"{label}: {elapsed:.1f} s; writer's longest insert {probe.longest * 1000:.0f} ms "
        f"({probe.inserts} inserts, {probe.errors} errors)"
    )
    if args.verbose:
        print(output)


def convert(args: argparse.Namespace) -> None:
    env = scratch_env(args)
    print(_facts(args))
    _timed(env, args, "manage.py check (start-up only)", "check")
    _timed(env, args, "prepare (online)", "events_partitions", "prepare")
    _timed(env, args, "migrate (the switch, under its lock)", "migrate", "events")
    print(_facts(args))


def migrate(args: argparse.Namespace) -> None:
    """`manage.py migrate` on --db as it is (a migration of this checkout on a large table),
    with a writer inserting every 10 ms and a watch on the events table's ACCESS EXCLUSIVE lock."""
    env = scratch_env(args)
    print(_facts(args))
    locks = LockWatch(admin_url(args, args.db))
    locks.start()
    try:
        _timed(env, args, "migrate", "migrate", "--noinput")
    finally:
        locks.stop()
    print(
        f"ACCESS EXCLUSIVE on events_event seen held {locks.longest * 1000:.0f} ms at the longest "
        f"({locks.sightings} sightings)"
    )
    print(_facts(args))


def retention(args: argparse.Namespace) -> None:
    args.db = args.db or "analytics_scale_bench_ret"
    env = {**scratch_env(args), "EVENTS_PARTITION_INTERVAL": "day", "DB_ROLE": "worker"}
    database_create(args)
    try:
        _manage(env, "migrate", "--noinput", "-v", "0")
        started = time.perf_counter()
        _manage(
            env,
            "generate_sample_data",
            "--events",
            str(args.events),
            "--days",
            str(args.days),
            "--quiet",
        )
        print(
            f"loaded {args.events:,} events over {args.days} days in "
            f"{time.perf_counter() - started:.0f} s; {_facts(args)}"
        )
        probe = WaitProbe(admin_url(args, args.db))
        probe.start()
        dropped = _probe(env, "drop", "30")
        probe.stop()
        print(
            f"dropped {dropped['partitions']} partitions ({dropped['rows']:,} rows) in "
            f"{dropped['seconds']:.2f} s; writer's longest insert {probe.longest * 1000:.0f} ms "
            f"({probe.inserts} inserts, {probe.errors} errors)"
        )
    finally:
        if not args.keep:
            database_drop(args)


def http(args: argparse.Namespace) -> None:
    """Ingestion through gunicorn into --db and into an empty database, taking turns."""
    os.environ["BENCH_PG_PORT"] = args.port  # read by _ingest_server when first imported
    from _partitions_http import http_rates

    print(_facts(args))
    http_rates(args, lambda: _facts(args))


def _months_create(url: str, months: list) -> None:
    """The partitions a fill made (empty here), so that both databases drop the same month."""
    with psycopg.connect(url, autocommit=True) as conn:
        for start, end in months:
            conn.execute(f"DROP TABLE IF EXISTS events_event_p{start:%Y%m%d}")
            conn.execute(
                f"CREATE TABLE events_event_p{start:%Y%m%d} PARTITION OF events_event "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )


def drop(args: argparse.Namespace) -> None:
    """Retention's partition drop on --db and on an empty database of the same partitions: the
    partitions wholly older than --keep-days, with a writer inserting meanwhile."""
    from _partitions_fill import fill_months

    full = args.db
    empty = f"{full}_empty"
    args.db = empty
    database_create(args)
    try:
        _manage(scratch_env(args), "migrate", "--noinput", "-v", "0")
        with psycopg.connect(admin_url(args, full)) as conn:
            oldest = conn.execute("SELECT min(received_at) FROM events_event").fetchone()[0]
        _months_create(admin_url(args, empty), fill_months(oldest, 0)[:1])
        for name in (empty, full):
            args.db = name
            print(_facts(args))
            probe, locks = WaitProbe(admin_url(args, name)), LockWatch(admin_url(args, name))
            probe.start()
            locks.start()
            time.sleep(1.0)
            dropped = _probe(scratch_env(args), "drop", str(args.keep_days))
            time.sleep(1.0)
            probe.stop()
            locks.stop()
            print(
                f"  dropped {dropped['partitions']} partition(s) ({dropped['rows']:,} rows) in "
                f"{dropped['seconds']:.2f} s (counting its rows first); ACCESS EXCLUSIVE on "
                f"events_event seen held {locks.longest * 1000:.0f} ms; writer's longest insert "
                f"{probe.longest * 1000:.0f} ms ({probe.inserts} inserts, {probe.errors} errors)"
            )
    finally:
        args.db = empty
        if not args.keep:
            database_drop(args)
        args.db = full


def fill(args: argparse.Namespace) -> None:
    """A fresh scratch database of --events events over --days days (_partitions_fill.py)."""
    from _partitions_fill import events_fill

    env = scratch_env(args)
    database_create(args)
    _manage(env, "migrate", "--noinput", "-v", "0")
    events_fill(admin_url(args, args.db), args.events, args.days)
    print(_facts(args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "action",
        choices=["fill", "http", "drop", "ingest", "convert", "migrate", "retention"],
    )
    parser.add_argument("--db", default="")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="", help="5432, or 5440 with --own-pg")
    parser.add_argument(
        "--own-pg",
        default="",
        metavar="DIR",
        help="run a PostgreSQL 15 of its own in DIR with scale/postgresql-tuned.conf "
        "(initdb once, stopped at the end unless --keep)",
    )
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=62)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--http-port", type=int, default=9401)
    parser.add_argument("--rounds", type=int, default=2, help="http: turns per database")
    parser.add_argument("--batches", default="100,500", help="http: batch sizes")
    parser.add_argument(
        "--warm-seconds",
        type=float,
        default=0.0,
        help="http: unmeasured batch load on both databases first (past a checkpoint's start)",
    )
    parser.add_argument(
        "--prewarm",
        action="store_true",
        help="http: load the key index and the current partition into shared buffers first",
    )
    parser.add_argument("--keep-days", type=int, default=60, help="drop: retention in days")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    actions = {
        "fill": fill,
        "http": http,
        "drop": drop,
        "ingest": ingest,
        "convert": convert,
        "migrate": migrate,
        "retention": retention,
    }
    args.port = args.port or ("5440" if args.own_pg else "5432")
    if not args.own_pg:
        actions[args.action](args)
        return
    from _pg_own import own_start, own_stop

    own_start(args.own_pg, args.port)
    try:
        actions[args.action](args)
    finally:
        if not args.keep:
            own_stop(args.own_pg)


if __name__ == "__main__":
    main()
