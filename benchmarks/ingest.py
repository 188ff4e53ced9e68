"""Ingestion benchmark: HTTP single events and batches against gunicorn, next to raw COPY.

    .venv/bin/python benchmarks/ingest.py            # or: make bench

What it does, in one run, and then stops everything it started:
1. creates and migrates a scratch PostgreSQL database (`analytics_bench` by default);
2. starts gunicorn (2 workers) on 127.0.0.1:8201 with ENVIRONMENT=development (anonymous
   ingestion), DEBUG off and ingestion throttling off;
3. runs load clients on this machine (a few processes, each with one keep-alive
   http.client connection), bounded by --duration per phase:
   - single events: POST /events, one fresh event per request -> requests/s, p50, p99;
   - batches: POST /events/batch with --batch-size events -> events/s, p50, p99 per batch;
   - Segment batches: POST /v1/batch with the same events as Segment messages -> events/s,
     next to /events/batch (the translation layer's cost; ADR 0016);
4. measures the raw PostgreSQL binary COPY rate into the same table (events_event), with the
   same event shape, and prints the ratios and the issue's targets.

The load clients share the machine's cores with gunicorn and PostgreSQL, so the figures are a
floor for what the server does on dedicated cores. Every request loop is bounded in count and
time and only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._ingest_clients import POSTERS, PhaseResult, load_phase  # noqa: E402
from benchmarks._ingest_copy import copy_rate  # noqa: E402
from benchmarks._ingest_report import report  # noqa: E402
from benchmarks._ingest_server import (  # noqa: E402
    HOST,
    WORKER_CLASSES,
    database_create,
    database_drop,
    events_count,
    events_truncate,
    migrate,
    server_env,
    server_start,
    server_stop,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="analytics_bench", help="scratch database (recreated)")
    parser.add_argument("--port", type=int, default=8201)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--worker-class",
        default="keepalive",
        choices=list(WORKER_CLASSES),
        help="keepalive (default, as deployed): gthread that serves a busy kept-alive "
        "connection in its thread (analytics_site/gunicorn_workers.py); gthread: gunicorn's "
        "threaded worker; sync: gunicorn's default (no keep-alive)",
    )
    parser.add_argument("--threads", type=int, default=2, help="per worker, not for sync")
    parser.add_argument(
        "--client",
        default="raw",
        choices=list(POSTERS),
        help="raw (default): keep-alive socket with a pre-built request head; http.client: the "
        "standard library's client (~4x the client CPU per request; figures before 2026-11-26)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument(
        "--single-clients",
        type=int,
        default=None,
        help="default: workers x threads, one client per server thread (fewer leave threads idle "
        "and measure round-trip latency rather than throughput; 2 before 2026-11-26)",
    )
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--copy-rows", type=int, default=200_000)
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database after")
    parser.add_argument(
        "--with-rules",
        action="store_true",
        help="load the default stored quality rules (manage.py load_default_rules) first",
    )
    parser.add_argument(
        "--phases",
        default="single,batch,segment,copy",
        help="comma list of single,batch,segment (/v1/batch, the same events as Segment "
        "messages),copy",
    )
    args = parser.parse_args()
    if args.single_clients is None:
        args.single_clients = args.workers * (1 if args.worker_class == "sync" else args.threads)
    phases = set(args.phases.split(","))

    env = server_env(args.db, {})
    print(f"database {args.db}: create and migrate")
    database_create(args.db)
    server = None
    nan = float("nan")
    empty = PhaseResult(nan, nan, nan, nan, 0, {}, "")
    single = batch = segment = empty
    copy_rows_per_s = float("nan")
    try:
        migrate(env)
        if args.with_rules:
            subprocess.run(
                [sys.executable, "manage.py", "load_default_rules"], cwd=ROOT, env=env, check=True
            )
        print(f"gunicorn: {args.workers} {args.worker_class} workers on {HOST}:{args.port}")
        server = server_start(env, args)
        if "single" in phases:
            print(f"single events: {args.single_clients} clients, {args.duration:.0f} s")
            single = load_phase(
                args.port,
                "/events",
                clients=args.single_clients,
                batch_size=0,
                seconds=args.duration,
                warmup=args.warmup,
                server_pid=server.pid,
                db_name=args.db,
                client_kind=args.client,
            )
        events_truncate(args.db)

        def batch_phase(path: str):
            """Batches of the same events to `path` (ours or a protocol's)."""
            return load_phase(
                args.port,
                path,
                clients=args.batch_clients,
                batch_size=args.batch_size,
                seconds=args.duration,
                warmup=args.warmup,
                server_pid=server.pid,
                db_name=args.db,
                client_kind=args.client,
            )

        if "batch" in phases:
            print(f"batches of {args.batch_size}: {args.batch_clients} clients")
            batch = batch_phase("/events/batch")
            print(f"  stored rows after batches: {events_count(args.db):,}")
        if "segment" in phases:
            events_truncate(args.db)
            print(f"Segment batches of {args.batch_size} (the same events): /v1/batch")
            segment = batch_phase("/v1/batch")
            print(f"  stored rows after Segment batches: {events_count(args.db):,}")
        server_stop(server)
        server = None
        if "copy" in phases:
            events_truncate(args.db)
            print(f"raw binary COPY: {args.copy_rows:,} rows")
            copy_rows_per_s = copy_rate(args.db, args.copy_rows, args.batch_size)
    finally:
        if server is not None:
            server_stop(server)
        if not args.keep_db:
            database_drop(args.db)
    report(single, batch, copy_rows_per_s, args, segment=segment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
