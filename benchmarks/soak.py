"""Soak: N minutes of mixed traffic (single events, batches, API and dashboard reads, quality
checks) against the production-like stack of the fault suite (tests/faults/stack.py), while
faults strike on a timetable: PostgreSQL killed, stalled, black-holed, its connections cut,
Redis killed, the worker SIGKILLed (and restarted, as its supervisor would). Then it waits for
the folds and prints: events acknowledged, stored, lost, duplicated, 5xx, p99, worker RSS.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/analytics .venv/bin/python \
        benchmarks/soak.py --minutes 1

It uses its own database (<name>_soak, dropped and migrated first) and ports from
--port-base (default 8400: gunicorn, redis-server, two proxies and their control ports).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.driver import Driver, Reader, p99_ms  # noqa: E402
from tests.faults.stack import Stack, rss_kib  # noqa: E402

FAULT_SECONDS = 8  # how long each fault lasts
SLOT_SECONDS = 30  # one fault per slot, then recovery traffic


def database_prepare(name: str) -> None:
    """Drop, create and migrate the soak's database (directly, not through the proxy)."""
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"}
    env.update(ENVIRONMENT="testing", REDIS_URL="")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def faults_timetable(stack, worker_restarts: list[int]):
    """(name, inject, heal) in the order they strike; the list repeats for long soaks."""

    def worker_kill() -> None:
        stack.worker_kill()
        worker_restarts.append(1)
        stack.worker_start()  # the supervisor's restart policy

    def cut_often() -> None:
        for _ in range(10):
            stack.pg.send("cut")
            time.sleep(0.3)

    return [
        ("postgres killed", stack.pg.kill, stack.pg.start),
        ("postgres stalled", lambda: stack.pg.send("stall"), lambda: stack.pg.send("pass")),
        ("redis killed", stack.redis_kill, stack.redis_start),
        ("connections cut mid-insert", cut_often, lambda: None),
        ("postgres black-holed", lambda: stack.pg.send("blackhole"), lambda: stack.pg.send("pass")),
        ("worker SIGKILLed", worker_kill, lambda: None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--port-base", type=int, default=8400)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args()
    base = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/analytics"))
    database = f"{base.path.lstrip('/') or 'analytics'}_soak"
    database_prepare(database)

    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    stack = Stack(database, workdir, port_base=args.port_base)
    # This process checks the database directly, with Django, after the run.
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        REDIS_URL=f"redis://127.0.0.1:{stack.redis_port}/0",
        ENVIRONMENT="testing",
        DJANGO_SETTINGS_MODULE="analytics_site.settings",
    )
    import django

    django.setup()
    # Django models are importable only now that the settings point at the soak's database.
    from quality.models import QualityCheck
    from tests.faults.invariants import assert_dashboards_match_raw, tally, wait_folded

    # A dataset check the beat runs every minute: the "checks" part of the mixed traffic.
    QualityCheck.objects.create(
        name="soak freshness", kind="freshness", threshold=15, interval_minutes=1
    )

    restarts: list[int] = []
    try:
        stack.start()
        rss_start = rss_kib(stack.worker)
        deadline = time.monotonic() + args.minutes * 60
        reader = Reader(stack.web_port)
        reader.start()
        with Driver(stack.web_port, threads=args.clients) as driver:
            timetable = faults_timetable(stack, restarts)
            slot = 0
            while time.monotonic() + SLOT_SECONDS / 2 < deadline:
                name, inject, heal = timetable[slot % len(timetable)]
                time.sleep(min(5, max(0, deadline - time.monotonic())))
                print(f"[{time.strftime('%H:%M:%S')}] fault: {name}", flush=True)
                inject()
                time.sleep(FAULT_SECONDS)
                heal()
                time.sleep(
                    max(0, min(SLOT_SECONDS - 5 - FAULT_SECONDS, deadline - time.monotonic()))
                )
                slot += 1
            time.sleep(max(0, deadline - time.monotonic()))
        reader.stop.set()
        reader.join(timeout=30)
        stack.wait_ready()
        rss_end = rss_kib(stack.worker)
        wait_folded(timeout=120)
        counts = tally(driver.record)
        try:
            assert_dashboards_match_raw()
            dashboards = "equal to raw SQL"
        except AssertionError as error:
            dashboards = f"DIFFER: {str(error)[:200]}"
    finally:
        stack.stop()
    record = driver.record
    rows = [
        ("minutes", f"{args.minutes:g} ({slot} faults)"),
        ("events acknowledged", counts.acknowledged),
        ("events stored", counts.stored),
        ("lost (acked, not stored)", counts.lost),
        ("duplicated", counts.duplicated),
        ("stored but never sent", counts.unexpected),
        ("quarantine rows repeated", counts.quarantine_repeats),
        ("ingest 5xx (not 503)", len(record.server_errors)),
        ("ingest 503 (bounded, resent)", record.statuses[503]),
        ("ingest hangs (> 20 s)", record.hangs),
        ("ingest requests", sum(record.statuses.values())),
        ("ingest p99 ms", f"{record.p99_ms():.0f}"),
        ("read 5xx (not 503)", sum(n for s, n in reader.statuses.items() if s >= 500 and s != 503)),
        ("read p99 ms", f"{p99_ms(reader.latencies):.0f}"),
        ("worker RSS start / end KiB", f"{rss_start} / {rss_end} (restarts: {len(restarts)})"),
        ("dashboards", dashboards),
    ]
    width = max(len(label) for label, _ in rows)
    print()
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(f"logs: {workdir}")
    if record.server_errors:
        print("first 5xx:", record.server_errors[:3])


if __name__ == "__main__":
    main()
