"""Snowplow tp2's Python cost per event against /events/batch's, on the same events, in this
process without HTTP or a database (issue 11: the translation layer must cost less than 25 %).

    .venv/bin/python benchmarks/snowplow_cost.py [--mixes realistic,light] [--batch-size 500]
        [--repeats 9] [--runs 6]

Per mix, one body of each (benchmarks/_ingest_bodies.py, the HTTP benchmark's bodies) goes
through the Python chain of its endpoint: the JSON parse; for tp2 `snowplow_body_events`,
`snowplow_event_map` and `mapped_translate`; then what `event_batch_ingest` does before the
insert (each payload's JSON, the schema layer with derivation, the originals' JSON) and the
insert's document (`_rows_document`, `_originals_taken`). Printed: µs of process CPU per
event, the min over `repeats` x `runs` (min, not mean: the machine is shared), and tp2's extra.
Run it alternated with a `git archive` copy of the base to compare two trees.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ENVIRONMENT", "development")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
django.setup()

import orjson  # noqa: E402
from django.conf import settings  # noqa: E402

from benchmarks._ingest_bodies import BodyMaker  # noqa: E402
from events.derivation import ClientContext  # noqa: E402
from events.services import original_storable  # noqa: E402
from events.services.store import _originals_taken, _rows_document  # noqa: E402
from events.validation import event_schema_results  # noqa: E402
from trackers.snowplow import snowplow_body_events, snowplow_event_map  # noqa: E402
from trackers.translate import mapped_translate  # noqa: E402

_CONTEXT = ClientContext("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "81.2.69.142")


def _stored(payloads: list, originals: list | None) -> int:
    """event_batch_ingest's Python work before the insert, then the insert's document."""
    received_at = dt.datetime.now(dt.UTC)
    skew = dt.timedelta(seconds=settings.INGEST_MAX_FUTURE_SKEW_SECONDS)
    encoded = [orjson.dumps(payload) for payload in payloads]
    results = event_schema_results(
        payloads, received_at=received_at, max_future_skew=skew, contexts=_CONTEXT, encoded=encoded
    )
    rows = []
    for index, result in enumerate(results):
        row = result.row
        if row is None:
            raise SystemExit(f"event {index} refused: {result.errors}")
        orjson.dumps(row["event_id"])[1:-1].decode()
        row["warnings"] = []
        if originals is not None:
            row["source"] = "snowplow"
            row["original"] = original_storable(originals[index], encoded=True)
        rows.append(row)
    _originals_taken(rows)
    _rows_document(rows, received_at)
    return len(rows)


def events_chain(body: bytes) -> int:
    return _stored(orjson.loads(body)["events"], None)


def snowplow_chain(body: bytes) -> int:
    received_at = dt.datetime.now(dt.UTC)
    events = snowplow_body_events(orjson.loads(body))
    mapped = [snowplow_event_map(event) for event in events]
    translated = [
        mapped_translate(item, source="snowplow", key_id=1, received_at=received_at)
        for item in mapped
    ]
    for item in translated:
        if item.error is not None:
            raise SystemExit(f"untranslatable: {item.error}")
    return _stored([item.payload for item in translated], [item.original for item in translated])


def _timed(chain, bodies: list[bytes], runs: int) -> float:
    """Min over runs of µs of CPU per event (a fresh body each run: no state carried over)."""
    best = float("inf")
    for body in bodies[:runs]:
        started = time.process_time()
        count = chain(body)
        best = min(best, (time.process_time() - started) / count * 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixes", default="realistic,light")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=9, help="alternations of the two chains")
    parser.add_argument("--runs", type=int, default=6, help="timed bodies per chain and repeat")
    args = parser.parse_args()
    for mix in args.mixes.split(","):
        makers = {p: BodyMaker(1000, protocol=p, mix=mix) for p in ("events", "snowplow")}
        chains = {"events": events_chain, "snowplow": snowplow_chain}
        best = {"events": float("inf"), "snowplow": float("inf")}
        for protocol, chain in chains.items():  # warm-up: memoised shapes, imports
            chain(makers[protocol].batch(args.batch_size))
        for _ in range(args.repeats):
            for protocol, chain in chains.items():
                bodies = [makers[protocol].batch(args.batch_size) for _ in range(args.runs)]
                best[protocol] = min(best[protocol], _timed(chain, bodies, args.runs))
        extra = best["snowplow"] - best["events"]
        print(
            f"{mix}: /events/batch {best['events']:.2f} µs/event, tp2 {best['snowplow']:.2f}"
            f" (+{extra:.2f}, {best['events'] / best['snowplow']:.1%} of /events/batch's rate)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
