"""The protocol endpoints against /events/batch on the same events, in this process: bytecodes
per event (exact, load-independent) and CPU per event, so the translation layer's cost (ADR
0016; target: under 25%) can be judged on a busy machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/analytics_bench_x \\
        .venv/bin/python benchmarks/protocol_opcount.py --batches 4 --batch-size 500 \\
        [--mix realistic] [--protocols events,segment,posthog,snowplow] [--report 40]

The database must be migrated (manage.py migrate); it is not emptied. Each batch carries fresh
events (benchmarks/_ingest_mix.py; for the protocols the same events in their format,
benchmarks/_ingest_shapes.py) and goes through `analytics_site.wsgi.application` with
anonymous ingestion (ENVIRONMENT=development) and throttling off. The first protocol listed is
the reference.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("ENVIRONMENT", "development")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["INGEST_THROTTLE_ENABLED"] = "false"

from analytics_site.wsgi import application  # noqa: E402  (after the environment)
from benchmarks._ingest_bodies import PATHS, BodyMaker  # noqa: E402
from benchmarks._wsgi_post import wsgi_post  # noqa: E402
from benchmarks.opcount import OpCounter  # noqa: E402


def _post(path: str, body: bytes, statuses: dict[int, int]) -> None:
    def start_response(status, response_headers, exc_info=None):
        code = int(status[:3])
        statuses[code] = statuses.get(code, 0) + 1

    wsgi_post(application, path, body, start_response)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4, help="measured batches per path")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--no-opcount", action="store_true", help="CPU time only (fast)")
    parser.add_argument("--report", type=int, default=0, help="top N functions per path")
    parser.add_argument("--mix", default="light", help="light or realistic (_ingest_mix.py)")
    parser.add_argument("--protocols", default="events,segment", help="the first: reference")
    args = parser.parse_args()
    seed = int(time.time()) % 100_000
    figures = {}
    protocols = args.protocols.split(",")
    for protocol in protocols:
        path = PATHS[protocol]
        maker = BodyMaker(seed, protocol=protocol, mix=args.mix)
        statuses: dict[int, int] = {}
        _post(path, maker.batch(args.batch_size), statuses)  # warm-up
        bodies = [maker.batch(args.batch_size) for _ in range(args.batches * 2)]
        cpu_started = time.process_time()
        for body in bodies[: args.batches]:
            _post(path, body, statuses)
        cpu = (time.process_time() - cpu_started) / (args.batches * args.batch_size)
        ops = float("nan")
        if not args.no_opcount:
            counter = OpCounter()
            left = iter(bodies[args.batches :])

            def one(path=path, left=left, statuses=statuses) -> None:
                _post(path, next(left), statuses)

            counter.run(one, args.batches)
            ops = counter.total / (args.batches * args.batch_size)
            if args.report:
                counter.report(args.batches * args.batch_size, top=args.report)
        figures[path] = (ops, cpu)
        print(f"{path:14} {ops:9,.0f} bytecodes/event  {cpu * 1e6:7.1f} us CPU/event  {statuses}")
    ours_ops, ours_cpu = figures[PATHS[protocols[0]]]
    for protocol in protocols[1:]:
        ops, cpu = figures[PATHS[protocol]]
        print(
            f"{PATHS[protocol]} over {PATHS[protocols[0]]}: bytecodes +{ops / ours_ops - 1:.1%}, "
            f"CPU +{cpu / ours_cpu - 1:.1%} (target: translation under +25%)"
        )
    print(f"{args.mix} mix; load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
