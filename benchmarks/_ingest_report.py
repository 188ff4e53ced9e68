"""The ingestion benchmark's printed report (benchmarks/ingest.py): rates per mix and endpoint,
CPU per event, the ratios to /events/batch and to raw COPY of the same run, and the targets of
issues 2 and 11."""

from __future__ import annotations

import os

from benchmarks._ingest_bodies import PATHS
from benchmarks._ingest_clients import PhaseResult

TARGETS = {"batch_events_per_s": 40_000, "single_rps": 1_500, "single_p99_ms": 10.0}
PROTOCOL_SHARE_TARGET = 0.75  # issue 11: the translation layer costs less than 25%


def _mark(ok: bool) -> str:
    return "meets target" if ok else "BELOW target"


def _server_cpu(phase: PhaseResult) -> float:
    """gunicorn + PostgreSQL CPU per request: what a phase costs the server whatever else runs
    (its inverse is the rate on dedicated, CPU-bound cores)."""
    return phase.worker_cpu_us + phase.postgres_cpu_us


def _single_report(single: PhaseResult, args) -> None:
    if single.requests_per_s != single.requests_per_s:  # nan: not run
        return
    print(
        f"single  POST /events (light mix) {single.requests_per_s:9,.0f} req/s   "
        f"p50 {single.p50_ms:6.2f} ms   p99 {single.p99_ms:6.2f} ms   "
        f"({args.single_clients} clients, errors {single.errors}, "
        f"new {single.statuses.get(201, 0):,}, duplicates {single.statuses.get(200, 0):,}); "
        f"CPU per request {single.worker_cpu_us:,.0f} us gunicorn + "
        f"{single.postgres_cpu_us:,.0f} us PostgreSQL"
    )
    print(
        f"single >= {TARGETS['single_rps']:,} req/s: "
        f"{_mark(single.requests_per_s >= TARGETS['single_rps'])}; p99 <= "
        f"{TARGETS['single_p99_ms']:.0f} ms: {_mark(single.p99_ms <= TARGETS['single_p99_ms'])}"
    )


def _mix_report(mix: str, figures: dict, copy_rows_per_s: float, args) -> None:
    size = args.batch_size
    reference = figures.get((mix, "events"))
    print(f"-- {mix} mix, batches of {size}, {args.batch_clients} clients")
    for protocol, path in PATHS.items():
        phase = figures.get((mix, protocol))
        if phase is None:
            continue
        share = ""
        if reference is not None and protocol != "events":
            ratio = phase.events_per_s / reference.events_per_s
            by_cpu = _server_cpu(reference) / _server_cpu(phase)
            target = PROTOCOL_SHARE_TARGET
            share = (
                f"\n{'':38s} {ratio:6.1%} of /events/batch's rate, {by_cpu:6.1%} by server CPU "
                f"per event (target >= {target:.0%}: rate {_mark(ratio >= target)}, "
                f"CPU {_mark(by_cpu >= target)})"
            )
        print(
            f"{path:38s} {phase.events_per_s:9,.0f} events/s  p50 {phase.p50_ms:6.1f} ms  "
            f"p99 {phase.p99_ms:6.1f} ms  CPU/event {phase.worker_cpu_us / size:5.1f} us "
            f"gunicorn + {phase.postgres_cpu_us / size:5.1f} us PostgreSQL{share}"
        )
        if phase.errors:
            print(f"!! {path}: {phase.errors} failed {phase.statuses}: {phase.first_error}")
    if copy_rows_per_s == copy_rows_per_s:  # not nan
        print(f"{'raw binary COPY, same table':38s} {copy_rows_per_s:9,.0f} rows/s")
        if reference is not None:
            print(
                f"{'/events/batch / raw COPY':38s} {reference.events_per_s / copy_rows_per_s:9.1%}"
            )
    if reference is not None:
        target = TARGETS["batch_events_per_s"]
        print(
            f"{'/events/batch >= ' + format(target, ',') + ' events/s':38s} "
            f"{_mark(reference.events_per_s >= target)} ({reference.events_per_s / target:.2f} x)"
        )


def report(
    single: PhaseResult,
    figures: dict[tuple[str, str], PhaseResult],
    copies: dict[str, float],
    args,
    mixes: list[str],
) -> None:
    print()
    threads = f" ({args.threads} threads each)" if args.worker_class != "sync" else ""
    mode = "production, key on every request" if args.production else "development, anonymous"
    print(
        f"== ingestion benchmark: gunicorn {args.workers} x {args.worker_class} workers{threads}, "
        f"{os.cpu_count()} cores shared with the load clients and PostgreSQL; {mode}; "
        f"stored quality rules: {'default set' if args.with_rules else 'none (schema layer only)'}"
        f"; {args.duration:.0f} s per phase"
    )
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    _single_report(single, args)
    for mix in mixes:
        _mix_report(mix, figures, copies.get(mix, float("nan")), args)
    light, realistic = figures.get(("light", "events")), figures.get(("realistic", "events"))
    if light is not None and realistic is not None:
        ratio = realistic.events_per_s / light.events_per_s
        print(f"realistic / light mix, /events/batch: {ratio:.1%}")
