"""Soak of the namespace cluster (scale/cluster.sh, issue 15 §5, ADR 0023): client threads send
single events and batches through HAProxy while dashboards and the API are read and quality
checks run, and on a timetable the failover monitor's host is lost and back, a web host is lost
(every process of its namespace SIGKILLed, then started again), then the worker host whose beat
holds the lease (worker and beat: the other beat must take over), then the PostgreSQL primary's
host (pg_auto_failover promotes the standby). At the end it asserts: every acknowledged event
stored exactly once, dashboard numbers equal raw SQL, no 5xx but 503s inside the failover window,
quality checks ran; and prints events/s through the load balancer, p99, failover time (first 503
to first 2xx) and the fold lag under load.

    scale/cluster.sh up && .venv/bin/python scale/soak.py --minutes 3; scale/cluster.sh down
    .venv/bin/python scale/soak.py --minutes 2 --up --down     # the same, one command

One soak per cluster: the events table must be empty at the start. The lost primary's host is
started again late in the run and must rejoin as a streaming secondary holding every event.
Exit status 1 when an invariant fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scale.soak_evidence import Unavailable, stray_503_evidence, stray_503_times  # noqa: E402
from tests.faults.driver import Driver, Reader, Record, p99_ms  # noqa: E402

CLUSTER = ROOT / "scale" / "cluster.sh"
RUN = Path(os.environ.get("CLUSTER_DIR", "/tmp/an-cluster"))  # noqa: S108 - cluster.sh's
FAILOVER_BOUND_SECONDS = 60  # 503s are allowed from the primary's loss until this much later


def cluster(*args: str) -> str:
    done = subprocess.run([str(CLUSTER), *args], capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"cluster.sh {' '.join(args)}: {done.stdout[-2000:]}{done.stderr}")
    return done.stdout.strip()


def cluster_env() -> dict[str, str]:
    """The apps' environment (cluster.sh writes it): this process checks the same database."""
    pairs = (line.split("=", 1) for line in (RUN / "app.env").read_text().splitlines() if line)
    return {key: value for key, value in pairs if key != "PATH"}


@dataclass
class Strike:
    name: str
    at: float  # seconds after the start
    command: tuple[str, ...]  # cluster.sh's arguments; PRIMARY and BEAT_HOST found at the time


def timetable(seconds: float) -> list[Strike]:
    """Each loss in its own stretch of the run, with recovery traffic after it."""
    return [
        # The failover monitor is one node (ADR 0023): lost, no failover can happen, but the
        # primary, the standby and their bouncers must go on serving.
        Strike("failover monitor's host lost", 0.04 * seconds, ("kill", "mon")),
        Strike("monitor's host back", 0.11 * seconds, ("start", "mon")),
        Strike("web host web1 lost", 0.15 * seconds, ("kill", "web1")),
        Strike("web host web1 back", 0.28 * seconds, ("start", "web1")),
        Strike("beat leader's worker host lost", 0.33 * seconds, ("kill", "BEAT_HOST")),
        Strike("that worker host back", 0.46 * seconds, ("start", "BEAT_HOST")),
        Strike("primary's host lost", 0.52 * seconds, ("kill", "PRIMARY")),
        Strike("that database host back", 0.75 * seconds, ("start", "OLD_PRIMARY")),
    ]


class LagSampler(threading.Thread):
    """The rollups' lag (age of the oldest event not yet folded) every 2 s, read from the
    database as the dashboards' freshness block does."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.samples: list[float] = []

    def run(self) -> None:
        from django.db import DatabaseError, connection
        from django.utils import timezone

        from reports.selectors.watermark import rollup_lag

        while not self.stop.wait(2.0):
            try:
                self.samples.append(rollup_lag(timezone.now())["lag_seconds"])
            except DatabaseError:
                connection.close()  # the failover: a fresh connection next time
        connection.close()


@dataclass
class Summary:
    seconds: float
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    events_per_second: float = 0.0
    requests: int = 0
    ingest_p99_ms: float = 0.0
    read_p99_ms: float = 0.0
    ingest_503: int = 0
    read_503: int = 0
    failover_seconds: float | None = None  # first 503 after the primary's loss -> first 2xx
    outage_seconds: float | None = None  # the primary's loss -> first 2xx after it
    fold_lag_median_s: float = 0.0
    fold_lag_max_s: float = 0.0
    check_runs: int = 0
    rejoin_seconds: float | None = None  # the old primary's host back -> streaming secondary
    standby_events: int | None = None  # events_event rows on it, once caught up
    beat_leaders: list[str] = field(default_factory=list)
    # Who answered the 503s (ingest and reads): HAProxy or the app, and the app's body
    unavailable_origins: dict[str, int] = field(default_factory=dict)
    # Each 503 outside the failover window: when, on which path, from whom, relative to strikes
    stray_503_times: list[str] = field(default_factory=list)
    # What the web hosts and HAProxy logged around them (scale/cluster.sh's logs)
    stray_503_evidence: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def failover_figures(timeline: list[tuple[float, int]], lost_at: float) -> tuple:
    """(first 503 -> first 2xx after it, loss -> that 2xx), from the ingest timeline."""
    after = sorted(entry for entry in timeline if entry[0] >= lost_at)
    first_error = next((t for t, status in after if status == 503 or status == 0), None)
    if first_error is None:
        return None, None
    recovered = next((t for t, status in after if t > first_error and 200 <= status < 300), None)
    if recovered is None:
        return None, None
    return recovered - first_error, recovered - lost_at


def in_failover_window(t: float, lost_at: float | None) -> bool:
    return lost_at is not None and lost_at <= t <= lost_at + FAILOVER_BOUND_SECONDS


def stray_503s(timelines: list[list[tuple[float, int]]], lost_at: float | None) -> int:
    """503s outside the failover window (a web or worker loss must not cause one)."""
    return sum(
        1
        for timeline in timelines
        for t, status in timeline
        if status == 503 and not in_failover_window(t, lost_at)
    )


def stray_503_entries(
    unavailable: dict[str, list[Unavailable]], lost_at: float | None
) -> list[tuple[str, Unavailable]]:
    """The 503s outside the failover window, ("ingest" | "read", entry), in answer order."""
    strays = [
        (kind, entry)
        for kind, entries in unavailable.items()
        for entry in entries
        if not in_failover_window(entry[1], lost_at)
    ]
    return sorted(strays, key=lambda stray: stray[1][1])


def judge(summary: Summary, record: Record, reader: Reader, lost_at: float | None) -> None:
    failures = summary.failures
    checks = [
        (summary.acknowledged > 0, "nothing acknowledged"),
        (summary.lost == 0, f"{summary.lost} acknowledged events lost"),
        (summary.duplicated == 0, f"{summary.duplicated} events stored twice"),
        (summary.unexpected == 0, f"{summary.unexpected} stored events never sent"),
        (not record.server_errors, f"ingest 5xx other than 503: {record.server_errors[:3]}"),
        (record.rejected_good == 0, f"{record.rejected_good} valid events rejected"),
        (record.hangs == 0, f"{record.hangs} ingest requests hung"),
        (record.given_up == 0, f"{record.given_up} ingest requests given up"),
        (
            not [s for s in reader.statuses if s >= 500 and s != 503],
            f"read 5xx other than 503: {dict(reader.statuses)}",
        ),
        (lost_at is not None and summary.outage_seconds is not None, "no recovery after failover"),
        (summary.check_runs > 0, "no quality check ran"),
        (
            len(set(summary.beat_leaders)) == 2 and all(summary.beat_leaders),
            f"no other beat took the lease over: {summary.beat_leaders}",
        ),
    ]
    failures += [message for ok, message in checks if not ok]
    stray = stray_503s([record.timeline, reader.timeline], lost_at)
    if stray:
        failures.append(f"{stray} 503s outside the failover window")


def soak(seconds: float, clients: int) -> Summary:
    env = cluster_env()
    os.environ.update(env, DJANGO_SETTINGS_MODULE="analytics_site.settings")
    import django

    django.setup()
    # Django models are importable only now that the settings point at the cluster.
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    from events.facade import events_all
    from quality.models import CheckRun, QualityCheck
    from tests.faults.invariants import assert_dashboards_match_raw, tally, wait_folded

    if events_all().exists():
        raise SystemExit("the events table is not empty: soak a fresh cluster (--up)")
    QualityCheck.objects.create(
        name="soak freshness", kind="freshness", threshold=30, interval_minutes=1
    )
    started_at = timezone.now()
    host, port = env["CLUSTER_LB"].split(":")
    summary = Summary(seconds=seconds)
    lost_at = back_at = old_primary = None
    struck: dict[str, float] = {}  # "kill web1" etc. -> time.monotonic() when it was made
    reader, sampler = Reader(int(port), host=host), LagSampler()
    reader.start()
    sampler.start()
    start = time.monotonic()
    # A client resends for as long as a failover may take (a resend every ~0.2 s).
    with Driver(int(port), threads=clients, host=host, max_attempts=400) as driver:
        for strike in timetable(seconds):
            time.sleep(max(0.0, start + strike.at - time.monotonic()))
            command = strike.command
            if command == ("kill", "PRIMARY"):
                old_primary = cluster("primary")
                command = ("kill", old_primary)
                lost_at = time.monotonic()
            if command == ("start", "OLD_PRIMARY"):
                command = ("start", old_primary)
                back_at = time.monotonic()
            if command == ("kill", "BEAT_HOST"):
                summary.beat_leaders.append(_beat_leader(env))
                beat_host = summary.beat_leaders[0].split(":")[0].removeprefix("an-") or "wk1"
            if command[1] == "BEAT_HOST":
                command = (command[0], beat_host)
            print(f"[{time.strftime('%H:%M:%S')}] {strike.name}: {' '.join(command)}", flush=True)
            struck[" ".join(command)] = time.monotonic()
            cluster(*command)
        time.sleep(max(0.0, start + seconds - time.monotonic()))
    elapsed = time.monotonic() - start
    reader.stop.set()
    sampler.stop.set()
    reader.join(timeout=30)
    sampler.join(timeout=30)
    summary.beat_leaders.append(_beat_leader(env))

    record = driver.record
    connection.close()  # opened on the lost primary: the next one finds the new primary
    wait_folded(timeout=180)
    counts = tally(record)
    summary.acknowledged, summary.stored = counts.acknowledged, counts.stored
    summary.lost, summary.duplicated = counts.lost, counts.duplicated
    summary.unexpected = counts.unexpected
    summary.events_per_second = round(counts.acknowledged / elapsed, 1)
    summary.requests = sum(record.statuses.values())
    summary.ingest_p99_ms = round(record.p99_ms())
    summary.read_p99_ms = round(p99_ms(reader.latencies))
    summary.ingest_503, summary.read_503 = record.statuses[503], reader.statuses[503]
    if lost_at is not None:
        failover, outage = failover_figures(record.timeline, lost_at)
        summary.failover_seconds = failover and round(failover, 2)
        summary.outage_seconds = outage and round(outage, 2)
    if sampler.samples:
        summary.fold_lag_median_s = round(statistics.median(sampler.samples), 1)
        summary.fold_lag_max_s = round(max(sampler.samples), 1)
    runs = CheckRun.objects.filter(ran_at__gte=started_at).aggregate(n=Count("id"))
    summary.check_runs = runs["n"]
    if back_at is not None:
        rejoin_check(summary, old_primary, back_at)
    judge(summary, record, reader, lost_at)
    unavailable = {"ingest": record.unavailable, "read": reader.unavailable}
    summary.unavailable_origins = dict(
        Counter(origin for entries in unavailable.values() for *_, origin in entries)
    )
    strays = stray_503_entries(unavailable, lost_at)
    summary.stray_503_times = stray_503_times(strays, struck, start)
    if strays:
        answered = [entry[1] for _, entry in strays]
        summary.stray_503_evidence = stray_503_evidence(RUN / "log", answered)
    try:
        assert_dashboards_match_raw()
    except AssertionError as error:
        summary.failures.append(f"dashboards differ from raw SQL: {str(error)[:300]}")
    return summary


def rejoin_check(summary: Summary, node: str, back_at: float) -> None:
    """The lost primary's host, started again, must come back as a streaming secondary by
    itself (pg_auto_failover rewinds it) and hold every stored event: the next loss has a
    standby to fail over to."""
    import psycopg

    from events.facade import events_all

    try:
        cluster("rejoined", node, "240")
    except RuntimeError as error:
        summary.failures.append(f"{node} did not rejoin as a secondary: {str(error)[-300:]}")
        return
    summary.rejoin_seconds = round(time.monotonic() - back_at, 1)
    stored = events_all().count()
    with psycopg.connect(cluster("dsn", node), autocommit=True, connect_timeout=5) as standby:
        for _ in range(120):
            row = standby.execute("SELECT count(*) FROM events_event").fetchone()
            summary.standby_events = row[0]
            if summary.standby_events == stored:
                return
            time.sleep(0.5)
    summary.failures.append(f"{node} holds {summary.standby_events} events, the primary {stored}")


def _beat_leader(env: dict[str, str]) -> str:
    import redis

    value = redis.Redis.from_url(env["REDIS_URL"], socket_timeout=3).get("ops:beat-leader")
    return value.decode() if value else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--up", action="store_true", help="scale/cluster.sh up first")
    parser.add_argument("--down", action="store_true", help="scale/cluster.sh down at the end")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--logs", type=Path, help="copy the cluster's logs here before --down")
    args = parser.parse_args()
    try:
        if args.up:
            print(cluster("up"), flush=True)
        summary = soak(args.minutes * 60, args.clients)
    finally:
        if args.logs and (RUN / "log").is_dir():
            shutil.copytree(RUN / "log", args.logs, dirs_exist_ok=True)
        if args.down:
            cluster("down")
    width = max(len(name) for name in asdict(summary))
    print()
    for name, value in asdict(summary).items():
        if name.startswith("stray_503_") and value:  # long lines: one a line
            print(name, *(f"  {line}" for line in value), sep="\n")
        else:
            print(f"{name:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(asdict(summary), indent=2))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
