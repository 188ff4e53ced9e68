"""Helpers of benchmarks/partitions.py: an in-process insert rate, and a writer thread that
records how long single inserts wait while a DDL step holds its lock."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def insert_rate(seconds: float, batch: int) -> dict[str, float]:
    """events_insert (the API's statement, prepared when single) for `seconds`: fresh random
    uuids, received now. Returns events/s and the median and p99 statement times (ms)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
    import django

    django.setup()
    from django.utils import timezone

    from events.services import events_insert

    times: list[float] = []
    stored = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        now = timezone.now()
        rows = [_row(now) for _ in range(batch)]
        t0 = time.perf_counter()
        stored += len(events_insert(rows))
        times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    times.sort()
    return {
        "events_per_s": stored / elapsed,
        "median_ms": statistics.median(times) * 1000,
        "p99_ms": times[int(len(times) * 0.99)] * 1000,
        "statements": len(times),
    }


def _row(now: dt.datetime) -> dict:
    n = uuid.uuid4()
    return {
        "event_id": str(n),
        "event_type": "page_view",
        "timestamp": now,
        "received_at": now,
        "user_id": f"user_{n.int % 200_000}",
        "session_id": f"session_{n.int % 1_000_000}",
        "device_type": "desktop",
        "country": "US",
        "page_url": "/products/laptop",
    }


_INSERT = (
    "INSERT INTO events_event (event_id, event_type, timestamp, client_timestamp, received_at, "
    "user_id, session_id, device_type, country, page_url, referrer, product_id, category, "
    "currency, order_id, search_query, properties, warnings) VALUES (%s, 'page_view', now(), "
    "now(), now(), 'u', 's', 'desktop', 'US', '/', '', '', '', '', '', '', '{}', '[]')"
)


class WaitProbe(threading.Thread):
    """Inserts one event every `every` seconds on its own connection and keeps the longest
    wait: what a client felt while a DDL step held the table's lock."""

    def __init__(self, url: str, every: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.longest = 0.0
        self.inserts = 0
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._halt.is_set():
                t0 = time.perf_counter()
                try:
                    conn.execute(_INSERT, [uuid.uuid4()])
                    self.inserts += 1
                except psycopg.Error:
                    self.errors += 1
                self.longest = max(self.longest, time.perf_counter() - t0)
                time.sleep(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


class LockWatch(threading.Thread):
    """Polls pg_locks every `every` seconds and keeps how long an ACCESS EXCLUSIVE lock on the
    events table was seen held (first to last sighting of one holder): the time during which
    no reader or writer of any partition can go on."""

    SQL = (
        "SELECT pid FROM pg_locks WHERE locktype = 'relation' AND granted "
        "AND mode = 'AccessExclusiveLock' AND relation = 'events_event'::regclass"
    )

    def __init__(self, url: str, every: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.longest = 0.0
        self.sightings = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            holder, since = None, 0.0
            while not self._halt.is_set():
                row = conn.execute(self.SQL).fetchone()
                now = time.perf_counter()
                pid = row[0] if row else None
                if pid is not None:
                    self.sightings += 1
                    if pid != holder:
                        since = now
                    self.longest = max(self.longest, now - since)
                holder = pid
                time.sleep(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def drop_before(days: int) -> dict[str, float]:
    """Retention's partition step with every row taken as folded: drop the partitions wholly
    older than `days` days. Returns how many, their rows and the wall time."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
    import django

    django.setup()
    from django.utils import timezone

    from events.receive_order import ReceivePosition
    from events.services import event_partitions_drop_before

    everything = ReceivePosition(txid=2**62, pk=2**62)
    started = time.perf_counter()
    dropped = event_partitions_drop_before(
        timezone.now() - dt.timedelta(days=days), held_by=(everything,)
    )
    return {
        "partitions": len(dropped),
        "rows": sum(p.rows for p in dropped),
        "seconds": time.perf_counter() - started,
    }


if __name__ == "__main__":
    import json

    if sys.argv[1] == "rate":
        print(json.dumps(insert_rate(float(sys.argv[2]), int(sys.argv[3]))))
    else:
        print(json.dumps(drop_before(int(sys.argv[2]))))
