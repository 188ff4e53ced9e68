"""The ingestion benchmark's printed report (benchmarks/ingest.py): rates, CPU per request,
the ratios to raw COPY, and the targets of issue 2."""

from __future__ import annotations

import os

from benchmarks._ingest_clients import PhaseResult

TARGETS = {"batch_events_per_s": 40_000, "single_rps": 1_500, "single_p99_ms": 10.0}


def _mark(ok: bool) -> str:
    return "meets target" if ok else "BELOW target"


def report(
    single: PhaseResult,
    batch: PhaseResult,
    copy_rows_per_s: float,
    args,
    segment: PhaseResult | None = None,
) -> None:
    print()
    threads = f" ({args.threads} threads each)" if args.worker_class != "sync" else ""
    print(
        f"== ingestion benchmark: gunicorn {args.workers} x {args.worker_class} workers{threads}, "
        f"{os.cpu_count()} cores shared with the load clients and PostgreSQL; "
        f"stored quality rules: {'default set' if args.with_rules else 'none (schema layer only)'}"
    )
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print(
        f"single  POST /events        {single.requests_per_s:9,.0f} req/s   "
        f"p50 {single.p50_ms:6.2f} ms   p99 {single.p99_ms:6.2f} ms   "
        f"({args.single_clients} clients, {args.duration:.0f} s, errors {single.errors}, "
        f"new {single.statuses.get(201, 0):,}, duplicates {single.statuses.get(200, 0):,})"
    )
    print(
        f"batch   POST /events/batch  {batch.events_per_s:9,.0f} events/s "
        f"({batch.requests_per_s:,.1f} batches/s of {args.batch_size}; "
        f"p50 {batch.p50_ms:.1f} ms  p99 {batch.p99_ms:.1f} ms; "
        f"{args.batch_clients} clients, errors {batch.errors})"
    )
    if segment is not None:
        print(
            f"segment POST /v1/batch      {segment.events_per_s:9,.0f} events/s "
            f"(same events as Segment messages; p50 {segment.p50_ms:.1f} ms  "
            f"p99 {segment.p99_ms:.1f} ms; errors {segment.errors}; /events/batch rate "
            f"{segment.events_per_s / batch.events_per_s:.1%}, target >= 75%)"
        )
        size = args.batch_size or 1
        print(
            f"server CPU per event: /events/batch {batch.worker_cpu_us / size:.1f} us gunicorn + "
            f"{batch.postgres_cpu_us / size:.1f} us PostgreSQL; /v1/batch "
            f"{segment.worker_cpu_us / size:.1f} us + {segment.postgres_cpu_us / size:.1f} us"
        )
    per_event = args.batch_size or 1
    print(
        f"server CPU per request: single {single.worker_cpu_us:,.0f} us gunicorn + "
        f"{single.postgres_cpu_us:,.0f} us PostgreSQL; batch {batch.worker_cpu_us / per_event:.1f}"
        f" us + {batch.postgres_cpu_us / per_event:.1f} us per event"
    )
    print(
        f"load clients ({args.client}) CPU per request: single {single.client_cpu_us:,.0f} us; "
        f"batch {batch.client_cpu_us / per_event:.1f} us per event (they share the 2 cores)"
    )
    print(
        f"COPY    binary, same table  {copy_rows_per_s:9,.0f} rows/s   "
        f"({args.copy_rows:,} rows in COPYs of {args.batch_size})"
    )
    print("-- ratios")
    print(f"batch HTTP / raw COPY            {batch.events_per_s / copy_rows_per_s:6.1%}")
    print(f"single HTTP / raw COPY           {single.requests_per_s / copy_rows_per_s:6.1%}")
    print(f"batch events/s / single req/s    {batch.events_per_s / single.requests_per_s:6.1f} x")
    print("-- targets (issue 2)")
    batch_target = TARGETS["batch_events_per_s"]
    print(
        f"batch  >= {batch_target:,} events/s   "
        f"{_mark(batch.events_per_s >= batch_target)} ({batch.events_per_s / batch_target:.2f} x)"
    )
    print(
        f"single >= {TARGETS['single_rps']:,} req/s         "
        f"{_mark(single.requests_per_s >= TARGETS['single_rps'])} "
        f"({single.requests_per_s / TARGETS['single_rps']:.2f} x)"
    )
    print(
        f"single p99 <= {TARGETS['single_p99_ms']:.0f} ms           "
        f"{_mark(single.p99_ms <= TARGETS['single_p99_ms'])}"
    )
    phases = [("single", single), ("batch", batch), ("segment", segment or batch)]
    for name, phase in phases[: 3 if segment is not None else 2]:
        if phase.errors:
            print(f"!! {name}: {phase.errors} failed {phase.statuses}: {phase.first_error}")
