"""Single-event requests through the site's WSGI application in this process (no gunicorn, no
sockets): the application's own cost per POST /events, for profilers and instruction counts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/analytics_bench_x \\
        .venv/bin/python benchmarks/ingest_inprocess.py --requests 2000 [--profile]

    # instructions per request: two callgrind runs, subtracted (start-up cancels out)
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/ingest_inprocess.py --requests 50 ...   # -> total A
    ... --requests 250 ...                                                  # -> total B
    # (B - A) / 200 instructions per request

    # bytecodes per request by function, exact and load-independent (tracing: slow)
    ... --requests 200 --opcount

The database must be migrated (manage.py migrate); it is not emptied. Each request carries a
fresh event (the benchmark's shapes) and goes through `analytics_site.wsgi.application`, as
gunicorn calls it. `--key` sends a real ingestion key (created here) in production's
authenticated mode, `--throttle` turns ingestion throttling on (the cache of settings: Redis
when REDIS_URL is set), `--with-rules` loads the default stored quality rules first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests first")
    parser.add_argument("--key", action="store_true", help="authenticate with an ingestion key")
    parser.add_argument("--throttle", action="store_true", help="ingestion throttling on")
    parser.add_argument("--with-rules", action="store_true", help="load the default rules")
    parser.add_argument(
        "--minimal",
        action="store_true",
        help="send what an SDK sends at the least (id, name, time, anonymous id) with a "
        "browser User-Agent: session, device type and country are derived (ADR 0014)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the measured requests")
    parser.add_argument(
        "--opcount", action="store_true", help="count bytecodes by function (benchmarks/opcount.py)"
    )
    args = parser.parse_args()

    os.environ.setdefault("ENVIRONMENT", "development")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["INGEST_THROTTLE_ENABLED"] = "true" if args.throttle else "false"
    if args.key:
        os.environ["INGEST_ALLOW_ANONYMOUS"] = "false"

    from analytics_site.wsgi import application  # after the environment
    from benchmarks._ingest_bodies import BodyMaker
    from benchmarks._wsgi_post import wsgi_post

    headers = {}
    if args.key:
        from events.services import ingestion_key_create

        created = ingestion_key_create(name=f"inprocess-{uuid.uuid4().hex[:8]}")
        headers["HTTP_AUTHORIZATION"] = f"Bearer {created.raw_key}"
    if args.with_rules:
        from django.core.management import call_command

        call_command("load_default_rules", verbosity=0)

    bodies = BodyMaker(seed=int(time.time()) % 100_000)
    statuses: dict[int, int] = {}

    def start_response(status, response_headers, exc_info=None):
        code = int(status[:3])
        statuses[code] = statuses.get(code, 0) + 1

    def minimal_body() -> bytes:
        moment = dt.datetime.now(dt.UTC).isoformat()
        visitor = f"anon-{random.randrange(5000)}"
        return orjson.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "newsletter_signup",
                "timestamp": moment,
                "anonymous_id": visitor,
            }
        )

    if args.minimal:
        headers["HTTP_USER_AGENT"] = (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
        )
        headers["REMOTE_ADDR"] = "81.2.69.160"

    def one_request() -> None:
        body = minimal_body() if args.minimal else bodies.single()
        wsgi_post(application, "/events", body, start_response, headers)

    for _ in range(args.warmup):
        one_request()
    statuses.clear()
    if args.opcount:
        from benchmarks.opcount import OpCounter

        counter = OpCounter()
        counter.run(one_request, args.requests)
        counter.report(args.requests, top=120)
        return 0
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(args.requests):
        one_request()
    cpu = time.process_time() - cpu_started
    elapsed = time.perf_counter() - started
    if profiler is not None:
        import pstats

        profiler.disable()
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
    print(
        f"{args.requests} requests: {elapsed / args.requests * 1e6:,.0f} us wall, "
        f"{cpu / args.requests * 1e6:,.0f} us CPU per request; statuses {statuses}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
