"""The translation layer's Python cost per event, in this process: the same events through
/events/batch's chain and through Segment's and PostHog's, without DRF, HTTP or gunicorn, so
that a change to a mapping or to validation can be timed on a busy machine (issue 11).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/analytics_seg_bench \\
    REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python benchmarks/translate_cost.py --mix realistic --repeats 30 [--pg]

A chain per request body, as each view runs it: the body parsed (orjson), each message mapped
(trackers.segment.messages, trackers.posthog), stored through the ingestion service
(validation, derivation, the rows' document, the insert on a real database: its rows are
kept) and the answer written. Per protocol and phase, the minimum over `--repeats` of the CPU
time of this process (time.process_time), per event; the protocols alternate within each
repeat, on fresh events of the same templates. `map` is the mapping alone (pure), timed apart
on the same messages. The collector is set as in a gunicorn worker (analytics_site.wsgi's
gc.freeze and young threshold). `--pg` adds the PostgreSQL backend's CPU per event (from
/proc/<pid>/stat, a mean: its clock ticks are 10 ms). `--properties-pg N`: only PostgreSQL's
CPU per row to take the mapped `properties` into jsonb, N batches per protocol (what a
mapping's properties cost the database; use a few hundred, for the 10 ms ticks). `--wsgi`
adds the whole request through the site's WSGI application (anonymous, development mode: the
protocols' views then also peek at the body for a public key, which a keyed SDK skips). The
database must be migrated.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ENVIRONMENT", "development")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DEBUG", "false")
os.environ["INGEST_THROTTLE_ENABLED"] = "false"

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

import analytics_site.wsgi  # noqa: E402  (Django set up, the collector as a worker's)
from benchmarks._ingest_bodies import PATHS, BodyMaker  # noqa: E402
from benchmarks._wsgi_post import wsgi_post  # noqa: E402
from events import services  # noqa: E402
from trackers.common import outcome_counts  # noqa: E402
from trackers.posthog import posthog_body_messages, posthog_message_map  # noqa: E402
from trackers.segment.api import _answer, messages_ingest  # noqa: E402
from trackers.segment.messages import message_translate  # noqa: E402
from trackers.translate import mapped_ingest  # noqa: E402

REQUEST = SimpleNamespace(
    user=None, META={"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "translate_cost"}
)


def events_chain(body: bytes) -> bytes:
    events = orjson.loads(body)["events"]
    source = services.IngestSource(ip="127.0.0.1", user_agent="translate_cost")
    outcomes = services.event_batch_ingest(events, source=source)
    answer = {**outcome_counts(o.status for o in outcomes)}
    answer["results"] = [outcome.as_dict() for outcome in outcomes]
    return orjson.dumps(answer)


def segment_chain(body: bytes) -> bytes:
    payload = orjson.loads(body)
    results = messages_ingest(REQUEST, payload["batch"], call=None, batch_sent_at=None)
    return orjson.dumps(_answer(results))


def posthog_chain(body: bytes) -> bytes:
    messages, _key, sent_at = posthog_body_messages(orjson.loads(body))
    mapped = [posthog_message_map(message, sent_at=sent_at) for message in messages]
    outcomes, calls = mapped_ingest(mapped, request=REQUEST, source="posthog", translation={})
    answer = {"status": 1, **outcome_counts(o.status for o in outcomes), "identity_calls": calls}
    answer["results"] = [outcome.as_dict() for outcome in outcomes]
    return orjson.dumps(answer)


def segment_map(body: bytes) -> list[dict]:
    now = timezone.now()
    return [
        message_translate(message, call=None, key_id=None, received_at=now).payload
        for message in orjson.loads(body)["batch"]
    ]


def posthog_map(body: bytes) -> list[dict]:
    return [posthog_message_map(message).payload for message in orjson.loads(body)["batch"]]


CHAINS = {"events": events_chain, "segment": segment_chain, "posthog": posthog_chain}
MAPS = {"events": None, "segment": segment_map, "posthog": posthog_map}


def _wsgi_request(name: str):
    """The whole request through the site's WSGI application (DRF, middleware, the answer)."""

    def request(body: bytes) -> None:
        wsgi_post(analytics_site.wsgi.application, PATHS[name], body, _status_ok)

    return request


def _status_ok(status: str, headers, exc_info=None) -> None:
    if not status.startswith("200"):
        raise RuntimeError(f"answered {status}")


def _backend_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) of the PostgreSQL backend `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def properties_pg(bodies: dict[str, bytes], rounds: int) -> None:
    """PostgreSQL's CPU per row to take each protocol's mapped `properties` from a JSON
    document into jsonb (as the insert's json_to_recordset does), rows of a temporary table."""
    documents = {}
    for name, body in bodies.items():
        payloads = orjson.loads(body)["events"] if MAPS[name] is None else MAPS[name](body)
        rows = [{"properties": payload.get("properties") or {}} for payload in payloads]
        documents[name] = orjson.dumps(rows).decode()
    statement = (
        "INSERT INTO properties_cost SELECT properties "
        "FROM json_to_recordset(%s::json) AS t(properties jsonb)"
    )
    cpu = dict.fromkeys(documents, 0.0)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE properties_cost (properties jsonb)")
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
        for repeat in range(rounds):
            for name, document in documents.items():
                started = _backend_cpu(backend)
                cursor.execute(statement, [document])
                cpu[name] += _backend_cpu(backend) - started
            if repeat % 20 == 19:
                cursor.execute("TRUNCATE properties_cost")
        cursor.execute("DROP TABLE properties_cost")
    rows = rounds * len(orjson.loads(next(iter(documents.values()))))
    for name, document in documents.items():
        size = len(document) / len(orjson.loads(document))
        print(
            f"{name:8} properties into jsonb: pg {cpu[name] / rows * 1e6:5.2f} us/row, "
            f"{size:5.0f} bytes of document/row"
        )


def _timed(function, body: bytes) -> float:
    gc.collect()
    started = time.process_time()
    function(body)
    return time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", default="realistic", help="light or realistic (_ingest_mix.py)")
    parser.add_argument("--repeats", type=int, default=30, help="batches per protocol")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--protocols", default="events,segment,posthog", help="first: reference")
    parser.add_argument("--pg", action="store_true", help="also the backend's CPU (mean)")
    parser.add_argument("--wsgi", action="store_true", help="also the whole WSGI request")
    parser.add_argument(
        "--properties-pg",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="only PostgreSQL's CPU for the mapped properties, ROUNDS batches each",
    )
    args = parser.parse_args()
    protocols = args.protocols.split(",")
    seed = int(time.time()) % 100_000
    makers = {name: BodyMaker(seed, protocol=name, mix=args.mix) for name in protocols}
    if args.properties_pg:
        properties_pg(
            {name: makers[name].batch(args.batch_size) for name in protocols}, args.properties_pg
        )
        return 0
    for name in protocols:  # warm-up: caches, prepared statement, imports
        CHAINS[name](makers[name].batch(args.batch_size))
    bodies = {
        name: [makers[name].batch(args.batch_size) for _ in range(args.repeats)]
        for name in protocols
    }
    requests = {name: _wsgi_request(name) for name in protocols}
    wsgi_bodies = {
        name: [makers[name].batch(args.batch_size) for _ in range(args.repeats if args.wsgi else 0)]
        for name in protocols
    }
    best_wsgi = {name: float("inf") for name in protocols}
    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        backend = cursor.fetchone()[0]
    best = {name: float("inf") for name in protocols}
    best_map = {name: float("inf") for name in protocols}
    pg = dict.fromkeys(protocols, 0.0)
    for repeat in range(args.repeats):
        for name in protocols:
            body = bodies[name][repeat]
            if MAPS[name] is not None:
                best_map[name] = min(best_map[name], _timed(MAPS[name], body))
            pg_started = _backend_cpu(backend) if args.pg else 0.0
            best[name] = min(best[name], _timed(CHAINS[name], body))
            if args.pg:
                pg[name] += _backend_cpu(backend) - pg_started
            if args.wsgi:
                wsgi_time = _timed(requests[name], wsgi_bodies[name][repeat])
                best_wsgi[name] = min(best_wsgi[name], wsgi_time)
    per = 1e6 / args.batch_size
    print(f"{args.mix} mix, {args.repeats} x {args.batch_size} events, min of CPU per batch")
    reference = protocols[0]
    for name in protocols:
        line = f"{name:8} chain {best[name] * per:6.1f} us/event"
        if MAPS[name] is not None:
            line += f"  (map alone {best_map[name] * per:5.1f})"
        if args.pg:
            line += f"  pg {pg[name] / args.repeats * per:5.1f} us/event (mean)"
        if args.wsgi:
            wsgi_line = f"wsgi {best_wsgi[name] * per:5.1f}"
            if name != reference:
                wsgi_line += f" {best_wsgi[name] / best_wsgi[reference] - 1:+.1%}"
            line += f"  [{wsgi_line}]"
        if name != reference:
            line += f"  {best[name] / best[reference] - 1:+.1%} over {reference}"
        print(line)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
