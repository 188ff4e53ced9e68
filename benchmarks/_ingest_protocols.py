"""The PostHog (`POST /batch/`) and Snowplow (`POST /com.snowplowanalytics.snowplow/tp2`)
phases of the ingestion benchmark: the same events as /events/batch's mix
(`_ingest_clients.event_template`), written as each SDK writes them, posted in batches.

    .venv/bin/python benchmarks/_ingest_protocols.py [--batch-size 500] [--duration 10]

runs them on their own (a scratch database and gunicorn, as ingest.py starts them), next to
/events/batch with the same events; `protocol_phase()` is what ingest.py can call.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._ingest_clients import (  # noqa: E402
    MAX_REQUESTS_PER_CLIENT,
    POSTERS,
    PhaseResult,
    event_template,
    load_phase,
)
from benchmarks._ingest_server import (  # noqa: E402
    database_create,
    database_drop,
    events_truncate,
    migrate,
    server_env,
    server_start,
    server_stop,
)

PATHS = {"posthog": "/batch/", "snowplow": "/com.snowplowanalytics.snowplow/tp2"}
POSTHOG_NAMES = {"product_view": "Product Viewed", "add_to_cart": "Product Added"}
ECOM = "iglu:com.snowplowanalytics.snowplow.ecommerce"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def posthog_message(event: dict) -> dict:
    """One of our events as posthog-python captures it."""
    properties = {
        "$current_url": event["page_url"],
        "$referrer": event["referrer"],
        "$session_id": event["session_id"],
        "$device_type": event["device_type"].title(),
        "$geoip_country_code": event["country"],
        "$lib": "posthog-python",
        **{
            k: event[k]
            for k in ("product_id", "category", "price", "quantity", "currency")
            if k in event
        },
        **event.get("properties", {}),
    }
    name = POSTHOG_NAMES.get(event["event_type"], "$pageview")
    return {
        "event": name,
        "distinct_id": event["user_id"],
        "uuid": "@ID@",
        "timestamp": "@TS@",
        "properties": properties,
    }


def snowplow_event(event: dict) -> dict:
    """One of our events as snowplow-tracker sends it (the e-commerce plugin's actions)."""
    sent = {
        "e": "pv",
        "eid": "@ID@",
        "dtm": "@TS@",
        "url": event["page_url"],
        "refr": event["referrer"],
        "uid": event["user_id"],
        "sid": event["session_id"],
        "p": {"desktop": "pc", "mobile": "mob"}.get(event["device_type"], "tv"),
        "tv": "py-1.1.0",
        "tna": "bench",
    }
    if event["event_type"] != "page_view":
        product = {
            "id": event["product_id"],
            "price": event["price"],
            "currency": event["currency"],
        }
        product |= {"category": event.get("category", "x"), "quantity": event.get("quantity", 1)}
        action = {"schema": f"{ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2"}
        action["data"] = {"type": event["event_type"]}
        unstruct = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
        contexts = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
        entity = {"schema": f"{ECOM}/product/jsonschema/1-0-0", "data": product}
        sent |= {
            "e": "ue",
            "ue_px": _b64({"schema": unstruct, "data": action}),
            "cx": _b64({"schema": contexts, "data": [entity]}),
        }
    return sent


class ProtocolBodies:
    """Batch bodies of fresh events (new ids, times of now) in one protocol's format."""

    def __init__(self, protocol: str, seed: int, count: int = 64) -> None:
        self.protocol = protocol
        shape = posthog_message if protocol == "posthog" else snowplow_event
        self.parts = []
        for index in range(seed, seed + count):
            head, rest = orjson.dumps(shape(event_template(index))).split(b"@ID@")
            middle, tail = rest.split(b"@TS@")
            self.parts.append((head, middle, tail))

    def batch(self, size: int) -> bytes:
        ids = os.urandom(16 * size).hex()
        now_ms = int(time.time() * 1000)
        if self.protocol == "posthog":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000 - 30)).encode()
        else:
            stamp = str(now_ms - 30_000).encode()
        events = []
        for n in range(size):
            head, middle, tail = self.parts[n % len(self.parts)]
            raw = ids[32 * n : 32 * n + 32]
            event_id = f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:]}"
            events.append(head + event_id.encode() + middle + stamp + tail)
        if self.protocol == "posthog":
            return b'{"batch":[' + b",".join(events) + b"]}"
        return b'{"schema":"' + PAYLOAD_DATA.encode() + b'","data":[' + b",".join(events) + b"]}"


def _client(port, protocol, batch_size, seconds, warmup, seed, queue, client_kind) -> None:
    bodies = ProtocolBodies(protocol, seed * 1000)
    poster = POSTERS[client_kind](port)
    latencies, statuses, first_error, events = [], {}, "", 0
    start = time.monotonic()
    measure_from, deadline = start + warmup, start + warmup + seconds
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        request = poster.request(PATHS[protocol], bodies.batch(batch_size))
        began = time.perf_counter_ns()
        code, payload = poster.send(request)
        elapsed, now = time.perf_counter_ns() - began, time.monotonic()
        if now >= deadline:
            break
        if now < measure_from:
            continue
        statuses[code] = statuses.get(code, 0) + 1
        if code != 200 or b'"rejected":0' not in payload:
            first_error = first_error or f"{code}: {payload[:300]!r}"
            continue
        latencies.append(elapsed)
        events += batch_size
    poster.close()
    queue.put((latencies, statuses, first_error, events))


def protocol_phase(
    port: int,
    protocol: str,
    *,
    clients: int,
    batch_size: int,
    seconds: float,
    warmup: float,
    client_kind: str = "raw",
) -> PhaseResult:
    """events/s of one protocol's batches (every event must be accepted to count)."""
    context = mp.get_context("fork")
    queue = context.Queue()
    args = (port, protocol, batch_size, seconds, warmup)
    processes = [
        context.Process(target=_client, args=(*args, seed, queue, client_kind), daemon=True)
        for seed in range(clients)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=seconds + warmup + 120) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    latencies = sorted(value for result in results for value in result[0])
    statuses: dict[int, int] = {}
    for result in results:
        for code, count in result[1].items():
            statuses[code] = statuses.get(code, 0) + count
    middle = latencies[len(latencies) // 2] / 1e6 if latencies else float("nan")
    tail = latencies[int(len(latencies) * 0.99)] / 1e6 if latencies else float("nan")
    return PhaseResult(
        requests_per_s=len(latencies) / seconds,
        events_per_s=sum(result[3] for result in results) / seconds,
        p50_ms=middle,
        p99_ms=tail,
        errors=sum(statuses.values()) - len(latencies),
        statuses=statuses,
        first_error=next((result[2] for result in results if result[2]), ""),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="analytics_bench_protocols")
    parser.add_argument("--port", type=int, default=8202)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="keepalive")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    env = server_env(args.db, {})
    database_create(args.db)
    server = None
    figures = {}
    try:
        migrate(env)
        server = server_start(env, args)
        options = dict(clients=args.clients, batch_size=args.batch_size, seconds=args.duration)
        events_truncate(args.db)
        figures["/events/batch"] = load_phase(
            args.port,
            "/events/batch",
            **options,
            warmup=args.warmup,
            server_pid=server.pid,
            db_name=args.db,
            client_kind="raw",
        )
        for protocol in PATHS:
            events_truncate(args.db)
            figures[PATHS[protocol]] = protocol_phase(
                args.port, protocol, **options, warmup=args.warmup
            )
    finally:
        if server is not None:
            server_stop(server)
        database_drop(args.db)
    reference = figures["/events/batch"].events_per_s
    for path, result in figures.items():
        print(
            f"{path:40s} {result.events_per_s:10,.0f} events/s  p50 {result.p50_ms:7.1f} ms  "
            f"p99 {result.p99_ms:7.1f} ms  {result.events_per_s / reference:5.0%} of /events/batch"
            f"  errors {result.errors} {result.first_error[:120]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
