"""benchmarks/partitions.py http: ingestion through the real HTTP path (gunicorn, the API,
the insert trigger claiming dedupe keys) into a database of tens of millions of events, next to
the same load into an empty one, in the same run.

The two databases take turns (empty, full, empty, full...) behind the same gunicorn settings,
so that the other work on a shared machine weighs on both alike; each turn runs single events
and batches of each size. Besides wall rates, it prints the CPU per event of the gunicorn
workers and of their PostgreSQL backends: load stretches wall time much more than the CPU an
event costs, so those are the figures to compare across machines and runs.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._ingest_clients import PhaseResult, load_phase  # noqa: E402
from benchmarks._ingest_server import (  # noqa: E402
    database_create,
    database_drop,
    database_url,
    events_truncate,
    migrate,
    server_env,
    server_start,
    server_stop,
)


def _phases(batches: list[int], singles: bool = True) -> list[tuple[str, str, int]]:
    """(label, path, batch size) of each phase; 0 is single events."""
    phases = [("single events", "/events", 0)] if singles else []
    return phases + [(f"batches of {size}", "/events/batch", size) for size in batches]


@dataclass
class Wal:
    """WAL written per event stored during a phase: bytes and full-page images."""

    bytes_per_event: float = float("nan")
    images_per_event: float = float("nan")
    reads_per_event: float = float("nan")


def _wal_sample(db: str) -> tuple[int, int, int, int]:
    """(WAL bytes, full-page images) of the whole instance, the events' id sequence, and the
    database's blocks read from outside shared buffers (the OS cache or the disk)."""
    with psycopg.connect(database_url(db), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        return conn.execute(
            "SELECT wal_bytes::bigint, wal_fpi, "
            "(SELECT last_value FROM events_event_id_seq), "
            "(SELECT blks_read FROM pg_stat_database WHERE datname = current_database()) "
            "FROM pg_stat_wal"
        ).fetchone()


def _wal(before: tuple[int, int, int, int], after: tuple[int, int, int, int]) -> Wal:
    events = after[2] - before[2]
    if events <= 0:
        return Wal()
    return Wal(
        (after[0] - before[0]) / events,
        (after[1] - before[1]) / events,
        (after[3] - before[3]) / events,
    )


def _turn(
    db: str, args, batches: list[int], singles: bool = True
) -> dict[str, tuple[PhaseResult, Wal]]:
    server_args = SimpleNamespace(
        port=args.http_port, workers=2, worker_class="keepalive", threads=2
    )
    server = server_start(server_env(db, {}), server_args)
    results = {}
    try:
        for label, path, size in _phases(batches, singles):
            wal_before = _wal_sample(db) if args.own_pg else None
            result = load_phase(
                args.http_port,
                path,
                clients=4,
                batch_size=size,
                seconds=args.seconds,
                warmup=2.0,
                server_pid=server.pid,
                db_name=db,
                client_kind="raw",
            )
            wal = _wal(wal_before, _wal_sample(db)) if wal_before else Wal()
            results[label] = (result, wal)
            bad = {code: n for code, n in result.statuses.items() if code not in (200, 201)}
            if bad:
                print(f"    {db} {label}: statuses {bad}; {result.first_error}")
            print(
                f"    {label:<16} {result.events_per_s:>9,.0f} events/s, PG CPU "
                f"{result.postgres_cpu_us / max(size, 1):>5.0f} µs/event, WAL "
                f"{wal.bytes_per_event:>6,.0f} B/event, {wal.images_per_event:.3f} "
                f"full-page images/event, {wal.reads_per_event:.3f} blocks read/event",
                flush=True,
            )
    finally:
        server_stop(server)
    return results


def _empty_prepare(empty: str) -> None:
    """The empty database: made and migrated once, emptied by TRUNCATE on later runs. Not
    dropped and made again: DROP DATABASE forces an immediate checkpoint, which put every run
    at the start of a checkpoint cycle (full-page images of every page touched)."""
    try:
        events_truncate(empty)
    except psycopg.OperationalError:
        database_create(empty)
        migrate(server_env(empty, {}))


PREWARM_SQL = """
SELECT count(pg_prewarm(c.oid))
FROM pg_class c
WHERE c.relname = 'events_eventkey_pkey'
   OR c.oid = to_regclass('events_event_p' || to_char(now(), 'YYYYMM') || '01')
   OR c.oid IN (SELECT indexrelid FROM pg_index
                WHERE indrelid = to_regclass('events_event_p' || to_char(now(), 'YYYYMM') || '01'))
"""


def _prewarm(db: str) -> None:
    """Load what inserts touch at random into shared buffers: the dedupe key index and the
    current month's partition with its indexes (what a primary that has run for hours holds,
    and what the autoprewarm worker of scale/postgresql-tuned.conf reloads after a restart)."""
    with psycopg.connect(database_url(db), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        relations = conn.execute(PREWARM_SQL).fetchone()[0]
    print(f"  prewarmed {db}: {relations} relations", flush=True)


def _median(results: list, field: str, per_event: int = 1) -> float:
    return statistics.median(getattr(result, field) / per_event for result in results)


def http_rates(args, facts) -> None:
    """Alternate --rounds turns of the empty and the full database; print medians and ratios."""
    batches = [int(size) for size in args.batches.split(",") if size]
    empty = f"{args.db}_empty"
    _empty_prepare(empty)
    try:
        if args.prewarm:
            for db in (empty, args.db):
                _prewarm(db)
        if args.warm_seconds:
            # Both databases under batch load first, unmeasured: after a checkpoint every page
            # an insert touches is first written whole to WAL; at a steady load the hot pages
            # have been, and that is the state a primary is in for most of a checkpoint cycle.
            for db in (empty, args.db):
                print(f"  warm-up: {db}, {args.warm_seconds:.0f} s of batches", flush=True)
                warm = SimpleNamespace(**{**vars(args), "seconds": args.warm_seconds})
                _turn(db, warm, [500], singles=False)
        runs: dict[str, list[dict[str, tuple[PhaseResult, Wal]]]] = {empty: [], args.db: []}
        for turn in range(args.rounds):
            for db in (empty, args.db):
                print(f"  turn {turn + 1}: {db}", flush=True)
                runs[db].append(_turn(db, args, batches))
        print(facts())
        print(
            f"{'phase':<16} {'database':<10} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'web CPU µs/ev':>14} {'PG CPU µs/ev':>13} {'WAL B/ev':>9} {'FPI/ev':>7} "
            f"{'reads/ev':>8}"
        )
        for label, _, size in _phases(batches):
            per_event = max(size, 1)
            rows = {}
            for db, name in ((empty, "empty"), (args.db, "full")):
                turns = [run[label][0] for run in runs[db]]
                wals = [run[label][1] for run in runs[db]]
                rows[name] = [
                    _median(turns, "events_per_s"),
                    _median(turns, "p50_ms"),
                    _median(turns, "p99_ms"),
                    _median(turns, "worker_cpu_us", per_event),
                    _median(turns, "postgres_cpu_us", per_event),
                    _median(wals, "bytes_per_event"),
                    _median(wals, "images_per_event"),
                    _median(wals, "reads_per_event"),
                ]
                print(
                    f"{label:<16} {name:<10} {rows[name][0]:>9,.0f} {rows[name][1]:>8.2f} "
                    f"{rows[name][2]:>8.2f} {rows[name][3]:>14.0f} {rows[name][4]:>13.0f} "
                    f"{rows[name][5]:>9,.0f} {rows[name][6]:>7.3f} {rows[name][7]:>8.3f}"
                )
            ratio = [
                full / base if base else float("nan")
                for full, base in zip(rows["full"], rows["empty"], strict=True)
            ]
            print(
                f"{'':<16} {'full/empty':<10} {ratio[0]:>9.2f} {ratio[1]:>8.2f} "
                f"{ratio[2]:>8.2f} {ratio[3]:>14.2f} {ratio[4]:>13.2f} {ratio[5]:>9.2f} "
                f"{ratio[6]:>7.2f} {ratio[7]:>8.2f}"
            )
    finally:
        if not args.keep:
            database_drop(empty)
