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
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._ingest_clients import PhaseResult, load_phase  # noqa: E402
from benchmarks._ingest_server import (  # noqa: E402
    database_create,
    database_drop,
    migrate,
    server_env,
    server_start,
    server_stop,
)


def _phases(batches: list[int]) -> list[tuple[str, str, int]]:
    """(label, path, batch size) of each phase; 0 is single events."""
    phases = [("single events", "/events", 0)]
    return phases + [(f"batches of {size}", "/events/batch", size) for size in batches]


def _turn(db: str, args, batches: list[int]) -> dict[str, PhaseResult]:
    server_args = SimpleNamespace(
        port=args.http_port, workers=2, worker_class="keepalive", threads=2
    )
    server = server_start(server_env(db, {}), server_args)
    results = {}
    try:
        for label, path, size in _phases(batches):
            results[label] = load_phase(
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
            bad = {code: n for code, n in results[label].statuses.items() if code not in (200, 201)}
            if bad:
                print(f"    {db} {label}: statuses {bad}; {results[label].first_error}")
    finally:
        server_stop(server)
    return results


def _median(results: list[PhaseResult], field: str, per_event: int) -> float:
    return statistics.median(getattr(result, field) / per_event for result in results)


def http_rates(args, facts) -> None:
    """Alternate --rounds turns of the empty and the full database; print medians and ratios."""
    batches = [int(size) for size in args.batches.split(",") if size]
    empty = f"{args.db}_empty"
    database_create(empty)
    try:
        migrate(server_env(empty, {}))
        runs: dict[str, list[dict[str, PhaseResult]]] = {empty: [], args.db: []}
        for turn in range(args.rounds):
            for db in (empty, args.db):
                print(f"  turn {turn + 1}: {db}", flush=True)
                runs[db].append(_turn(db, args, batches))
        print(facts())
        print(
            f"{'phase':<16} {'database':<10} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'web CPU µs/ev':>14} {'PG CPU µs/ev':>13}"
        )
        for label, _, size in _phases(batches):
            per_event = max(size, 1)
            rows = {}
            for db, name in ((empty, "empty"), (args.db, "full")):
                turns = [run[label] for run in runs[db]]
                rows[name] = [
                    statistics.median(t.events_per_s for t in turns),
                    statistics.median(t.p50_ms for t in turns),
                    statistics.median(t.p99_ms for t in turns),
                    _median(turns, "worker_cpu_us", per_event),
                    _median(turns, "postgres_cpu_us", per_event),
                ]
                print(
                    f"{label:<16} {name:<10} {rows[name][0]:>9,.0f} {rows[name][1]:>8.2f} "
                    f"{rows[name][2]:>8.2f} {rows[name][3]:>14.0f} {rows[name][4]:>13.0f}"
                )
            ratio = [full / base for full, base in zip(rows["full"], rows["empty"], strict=True)]
            print(
                f"{'':<16} {'full/empty':<10} {ratio[0]:>9.2f} {ratio[1]:>8.2f} "
                f"{ratio[2]:>8.2f} {ratio[3]:>14.2f} {ratio[4]:>13.2f}"
            )
    finally:
        if not args.keep:
            database_drop(empty)
