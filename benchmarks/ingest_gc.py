"""Young garbage collections inside ingestion requests, in a process set up as a gunicorn worker
(analytics_site.wsgi: gc.freeze and GC_YOUNG_THRESHOLD): the same events through /events/batch
and the three tracker protocols' batch endpoints, through the site's WSGI application (no
HTTP), `--batches` measured batches of 500 each after two unmeasured ones.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<a migrated scratch database> \\
        .venv/bin/python benchmarks/ingest_gc.py --mix light

A collection that starts inside a request walks the request's live objects and frees nothing
(they go by reference counting when it is answered): there should be none. Prints, per
endpoint, the process's CPU per event and the collections seen (count, CPU per event).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ENVIRONMENT", "development")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["INGEST_THROTTLE_ENABLED"] = "false"

import analytics_site.wsgi  # Django set up, the collector as a worker's
from benchmarks._ingest_bodies import PATHS, BodyMaker
from benchmarks._wsgi_post import wsgi_post

ENDPOINTS = ("events", "segment", "posthog", "snowplow")
BATCH_SIZE = 500


class CollectionClock:
    """gc.callbacks hook: collections per generation and their CPU seconds."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[int, float]] = {}
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.process_time()
            return
        count, seconds = self.seen.get(info["generation"], (0, 0.0))
        self.seen[info["generation"]] = (count + 1, seconds + time.process_time() - self._started)


def _answered(status: str, headers, exc_info=None) -> None:
    if not status.startswith("200"):
        raise SystemExit(f"the endpoint answered {status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", default="light", choices=("light", "realistic"))
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    clock = CollectionClock()
    gc.callbacks.append(clock)
    events = args.batches * BATCH_SIZE
    for name in ENDPOINTS:
        maker = BodyMaker(3, protocol=name, mix=args.mix)
        bodies = [maker.batch(BATCH_SIZE) for _ in range(args.batches + 2)]
        for body in bodies[:2]:
            wsgi_post(analytics_site.wsgi.application, PATHS[name], body, _answered)
        clock.seen.clear()
        started = time.process_time()
        for body in bodies[2:]:
            wsgi_post(analytics_site.wsgi.application, PATHS[name], body, _answered)
        per_event = (time.process_time() - started) / events * 1e6
        collections = ", ".join(
            f"gen {generation}: {count} ({seconds / events * 1e6:.2f} us/event)"
            for generation, (count, seconds) in sorted(clock.seen.items())
        )
        collections = collections or "none"
        print(f"{args.mix:9s} {name:9s} {per_event:6.1f} us/event  collections: {collections}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
