"""The dashboard benchmark's timing and its table (benchmarks/dashboard.py): p50 and p95 of
each read cold, after a fold and warm, next to the raw GROUP BY, against the 100 ms bar."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

TARGET_MS = 100.0


def timed(function: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def results_print(args, results: list[tuple], raw_results: dict) -> None:
    """One line per (state, preset, read): `results` rows are (state, preset, read, cold,
    after fold, warm), each a (p50, p95) in ms; `raw_results` maps (preset, read) to the raw
    GROUP BY's."""
    print(
        f"\n{args.events:,} events over {args.days} days; ms over {args.runs} runs. cold = nothing "
        "cached (Django cache cleared, no tail summary: a flushed cache or a restarted worker); "
        "after fold = a view not read since the last fold (rollup reads not cached; the tail "
        "summary the fold task shared, extended by the events that came after it); warm = the "
        "same read again"
    )
    print(
        f"{'state':<14}{'preset':<20}{'read':<18}{'cold p50':>9}{'p95':>8}{'fold p50':>9}"
        f"{'p95':>8}{'warm p50':>9}{'p95':>8}{'raw p50':>10}{'raw/cold':>9}"
    )
    over = {"cold": 0, "after fold": 0, "warm": 0}
    for tail_label, preset, name, (c50, c95), (f50, f95), (w50, w95) in results:
        raw = raw_results.get((preset, name))
        raw_text = (
            f"{raw[0]:>10.0f}{raw[0] / c50:>8.0f}x" if raw and tail_label == "rolled up" else ""
        )
        late = [
            label
            for label, p95 in (("cold", c95), ("after fold", f95), ("warm", w95))
            if p95 >= TARGET_MS
        ]
        for label in late:
            over[label] += 1
        flag = f"  (p95 over 100 ms: {', '.join(late)})" if late else ""
        print(
            f"{tail_label:<14}{preset:<20}{name:<18}{c50:>9.1f}{c95:>8.1f}{f50:>9.1f}{f95:>8.1f}"
            f"{w50:>9.1f}{w95:>8.1f}{raw_text}{flag}"
        )
    print(
        f"reads with p95 over {TARGET_MS:.0f} ms, of {len(results)}: "
        + ", ".join(f"{label} {count}" for label, count in over.items())
    )
