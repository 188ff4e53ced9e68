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
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._ingest_clients import POSTERS, PhaseResult, load_phase, phases_merge  # noqa: E402
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

PROTOCOLS = ("events", "segment", "posthog", "snowplow")  # the batch phases, in run order
PHASE_OF = {"events": "batch", "segment": "segment", "posthog": "posthog", "snowplow": "snowplow"}


def _arguments() -> argparse.Namespace:
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
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every batch phase this many times, interleaved, and report the mean (a "
        "shared machine's load comes in bursts)",
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
        "--production",
        action="store_true",
        help="ENVIRONMENT=production with an ingestion key sent on every request (Bearer), as "
        "deployed; default: development mode, anonymous ingestion",
    )
    parser.add_argument(
        "--mixes",
        default="light,realistic",
        help="comma list of light (issue 2's mix) and realistic (issue 11's: purchases, "
        "searches, properties, spread timestamps); see benchmarks/_ingest_mix.py",
    )
    parser.add_argument(
        "--phases",
        default="single,batch,segment,posthog,snowplow,copy",
        help="comma list of single (light mix only), batch (/events/batch), segment "
        "(/v1/batch), posthog (/batch/), snowplow (tp2): the same events in each protocol's "
        "format, and copy (the raw binary COPY reference)",
    )
    args = parser.parse_args()
    if args.single_clients is None:
        args.single_clients = args.workers * (1 if args.worker_class == "sync" else args.threads)
    return args


def _production_env(env: dict[str, str]) -> dict[str, str]:
    return env | {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "benchmark-only-" + "x" * 40,
        "ALLOWED_HOSTS": HOST,
    }


def _key_create(env: dict[str, str]) -> str:
    """A write key for the run: the last line `ingestion_key create` prints is the raw key."""
    done = subprocess.run(
        [sys.executable, "manage.py", "ingestion_key", "create", "benchmark", "--scopes", "write"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1].strip()


def main() -> int:
    args = _arguments()
    phases = set(args.phases.split(","))
    mixes = [mix for mix in args.mixes.split(",") if mix]
    env = server_env(args.db, {})
    if args.production:
        env = _production_env(env)
    print(f"database {args.db}: create and migrate")
    database_create(args.db)
    server = None
    nan = float("nan")
    single = PhaseResult(nan, nan, nan, nan, 0, {}, "")
    figures: dict[tuple[str, str], PhaseResult] = {}
    copies: dict[str, float] = {}
    try:
        migrate(env)
        if args.with_rules:
            subprocess.run(
                [sys.executable, "manage.py", "load_default_rules"], cwd=ROOT, env=env, check=True
            )
        authorization = f"Bearer {_key_create(env)}" if args.production else ""
        print(f"gunicorn: {args.workers} {args.worker_class} workers on {HOST}:{args.port}")
        server = server_start(env, args)
        common = dict(
            seconds=args.duration,
            warmup=args.warmup,
            server_pid=server.pid,
            db_name=args.db,
            client_kind=args.client,
            authorization=authorization,
        )
        if "single" in phases:
            print(f"single events: {args.single_clients} clients, {args.duration:.0f} s")
            single = load_phase(
                args.port, "/events", clients=args.single_clients, batch_size=0, **common
            )
        rounds: dict[tuple[str, str], list[PhaseResult]] = {}
        for round_number, mix, protocol in _round_order(args.rounds, mixes, phases):
            events_truncate(args.db)
            print(
                f"round {round_number}, {mix} mix, {protocol}: batches of {args.batch_size}, "
                f"{args.batch_clients} clients"
            )
            rounds.setdefault((mix, protocol), []).append(
                load_phase(
                    args.port,
                    protocol=protocol,
                    mix=mix,
                    clients=args.batch_clients,
                    batch_size=args.batch_size,
                    **common,
                )
            )
            print(f"  stored rows: {events_count(args.db):,}")
        figures = {phase: phases_merge(results) for phase, results in rounds.items()}
        server_stop(server)
        server = None
        if "copy" in phases:
            for mix in mixes:
                events_truncate(args.db)
                print(f"raw binary COPY, {mix} mix: {args.copy_rows:,} rows")
                copies[mix] = copy_rate(args.db, args.copy_rows, args.batch_size, mix)
    finally:
        if server is not None:
            server_stop(server)
        if not args.keep_db:
            database_drop(args.db)
    report(single, figures, copies, args, mixes)
    if args.rounds > 1:
        _round_shares_print(rounds, mixes)
    return 0


def _round_order(rounds: int, mixes: list[str], phases: set[str]) -> list[tuple[int, str, str]]:
    """(round, mix, protocol) in run order. Every other round runs backwards (ABCD DCBA ...):
    a machine whose speed drifts during a round (a shared host's does, by up to 2x within
    minutes) then favours no endpoint for being measured first."""
    order = []
    for number in range(1, rounds + 1):
        forwards = [
            (number, mix, protocol)
            for mix in mixes
            for protocol in PROTOCOLS
            if PHASE_OF[protocol] in phases
        ]
        order += forwards if number % 2 else forwards[::-1]
    return order


def _round_shares_print(rounds: dict[tuple[str, str], list[PhaseResult]], mixes: list[str]) -> None:
    """Each protocol's rate as a share of /events/batch's in the same round (phases minutes
    apart, not the whole run apart), and their median: how much the reported share of means
    owes to one round's luck."""
    for mix in mixes:
        reference = rounds.get((mix, "events"), [])
        for protocol in PROTOCOLS[1:]:
            measured = rounds.get((mix, protocol), [])
            shares = [
                ours.events_per_s / theirs.events_per_s * 100
                for ours, theirs in zip(measured, reference, strict=False)
                if theirs.events_per_s
            ]
            if not shares:
                continue
            listed = " ".join(f"{share:.0f}" for share in shares)
            median = statistics.median(shares)
            print(
                f"{mix} {protocol}: share of /events/batch's rate per round {listed} %,"
                f" median {median:.1f} %"
            )


if __name__ == "__main__":
    sys.exit(main())
