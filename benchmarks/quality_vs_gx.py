"""The default check suite vs the equivalent Great Expectations suite, side by side (issue 12 §4).

    .venv/bin/python benchmarks/quality_vs_gx.py                  # 1M and 10M events
    .venv/bin/python benchmarks/quality_vs_gx.py --reuse          # keep and reuse the data
    .venv/bin/python benchmarks/quality_vs_gx.py --sizes 1000000  # one size

For each size, on a scratch database (`<--db-prefix>_1m`, `_10m`; generated once with
`generate_sample_data --end END`, kept with --reuse): migrate, load the default rules and
checks, fold what is pending into the rollups (timed: that cost is paid by the periodic fold,
not by a check), judge the enabled checks as of END (`benchmarks/_quality_suite.py`, --repeat
times, median), then run the GX suite over the same windows on the raw tables
(`benchmarks/_gx_suite.py`, in the GX virtualenv --gx-python: great-expectations is in
requirements/bench.txt, never in the product's requirements).

Verdicts must agree check by check (exit 1 otherwise): ours fail <=> GX fails, where GX's
expectation decides (freshness, null rates, duplicates, funnel, pass rate: `mostly` is
1 - threshold; late share; mean shift: ExpectColumnMeanToBeBetween around the baseline mean GX
observed), or the project's own decision function judges what GX observed (volume counts,
drift value counts, the busiest value's count: GX has no robust seasonal z-score, TVD,
vanished share or top share). Windows under a check's min_events are skipped on both sides.
Goals printed: ours at 10M at least 20x faster than GX, and within 1.5x of ours at 1M.
Timings on a shared machine are noisy; run it alone for figures to compare.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generate import _manage, admin_url, database_create, scratch_env
from quality.engine import checks as engine
from quality.engine.volume import BaselineDay, weekday_factors

ROOT = Path(__file__).resolve().parent.parent
END = "2026-12-05T00:00:00+00:00"
SPEED_GOAL, SCALE_GOAL = 20.0, 1.5


def _has_events(args: argparse.Namespace) -> bool:
    try:
        with psycopg.connect(admin_url(args, args.db), autocommit=True) as conn:
            return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM events_event)").fetchone()[0])
    except psycopg.Error:
        return False


def prepare(args: argparse.Namespace, events: int) -> dict[str, str]:
    env = scratch_env(args)
    env["DB_ROLE"] = "worker"  # task-sized statement timeout for the load and the folds
    if not (args.reuse and _has_events(args)):
        print(f"  {args.db}: create, migrate, generate {events:,} events (end {END})")
        database_create(args)
        _manage(env, "migrate", "--noinput", "-v", "0")
        _manage(env, "generate_sample_data", "--events", str(events), "--seed", "42",
                "--end", END, "--workers", str(args.workers), "--quiet")  # fmt: skip
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "load_default_rules")
    with psycopg.connect(admin_url(args, args.db), autocommit=True) as conn:
        conn.execute("ANALYZE")
    return env


def ours(env: dict[str, str], repeat: int) -> dict:
    result = subprocess.run(
        [sys.executable, "benchmarks/_quality_suite.py", "--now", END, "--repeat", str(repeat)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"our suite failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def gx(args: argparse.Namespace, checks: list[dict]) -> dict:
    spec = {
        "url": f"postgresql+psycopg2://{args.user}@{args.host}:{args.port}/{args.db}",
        "now": END,
        "checks": [
            {key: c[key] for key in ("name", "kind", "params", "threshold")} for c in checks
        ],
    }
    result = subprocess.run(
        [args.gx_python, "benchmarks/_gx_suite.py"],
        cwd=ROOT, input=json.dumps(spec), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"GX suite failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def gx_fails(check: dict, observed: dict, now: dt.datetime) -> bool:
    """GX's verdict: its expectation's, or ours applied to what GX observed. A window with
    fewer rows than the check's min_events is skipped on both sides, as ours does."""
    params = check["params"]
    least = params.get("min_events", 1)
    if "success" in observed:
        if observed.get("element_count", least) < least:
            return False
        if min(observed.get("counts", [least])) < least:  # mean shift: both windows
            return False
        return not observed["success"]
    if check["kind"] == "volume_anomaly":
        counts = observed["counts"]
        baseline = [
            BaselineDay(day, (now - dt.timedelta(days=day)).weekday(), count)
            for day, count in zip(observed["days"], counts[1:], strict=True)
        ]
        result = engine.volume_evaluate(
            counts[0], baseline, threshold=check["threshold"],
            direction=params.get("direction", "both"),
            min_baseline_days=params.get("min_baseline_days", 3), weekday=now.weekday(),
            factors=weekday_factors([tuple(day) for day in observed["whole_days"]]),
            dispersion=params.get("dispersion", 1.0),
        )  # fmt: skip
    elif check["kind"] == "top_share":
        result = engine.rate_evaluate(
            observed["top"], observed["total"], threshold=check["threshold"],
            what="top share", min_events=least,
        )  # fmt: skip
    else:
        options = {"min_expected": params["min_expected"]} if "min_expected" in params else {}
        result = engine.drift_evaluate(
            observed["current"], observed["baseline"], threshold=check["threshold"],
            method=params.get("method", "tvd"), min_events=params.get("min_events", 50),
            **options,
        )  # fmt: skip
    return result.outcome == engine.FAIL


def run_size(args: argparse.Namespace, events: int) -> dict:
    args.db = f"{args.db_prefix}_{events // 1_000_000}m"
    print(f"\n== {events:,} events ==")
    env = prepare(args, events)
    mine = ours(env, args.repeat)
    theirs = {row["name"]: row for row in gx(args, mine["checks"])["checks"]}
    print(f"  fold before the checks: {mine['fold']}; one suite run: {mine['blocks']:,} buffers")
    print(f"  {'check':<36} {'ours ms':>9} {'GX s':>8}  verdict (ours / GX)")
    agree = True
    for check in mine["checks"]:
        observed = theirs[check["name"]]
        their_fail = gx_fails(check, observed, dt.datetime.fromisoformat(END))
        ours_fail = check["outcome"] == engine.FAIL
        same = ours_fail == their_fail and check["outcome"] != "error"
        agree &= same
        print(
            f"  {check['name']:<36} {statistics.median(check['ms']):>9.1f} "
            f"{observed['seconds']:>8.2f}  {check['outcome']} / {'fail' if their_fail else 'pass'}"
            f"{'' if same else '  <-- DIFFERENT'}"
        )
    ours_s = statistics.median(mine["totals"])
    gx_s = sum(row["seconds"] for row in theirs.values())
    print(
        f"  suite: ours {ours_s * 1000:.1f} ms (median of {len(mine['totals'])}, first "
        f"{mine['totals'][0] * 1000:.1f} ms), GX {gx_s:.1f} s: GX / ours = {gx_s / ours_s:.0f}x"
    )
    return {"events": events, "ours": ours_s, "gx": gx_s, "agree": agree, "blocks": mine["blocks"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--db-prefix", default="analytics_quality_merge_bench")
    parser.add_argument("--reuse", action="store_true", help="keep and reuse generated data")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gx-python", default=str(ROOT / ".venv-gx" / "bin" / "python"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5432")
    parser.add_argument("--user", default="postgres")
    args = parser.parse_args()
    results = [run_size(args, events) for events in args.sizes]
    print()
    if len(results) > 1:
        small, large = results[0], results[-1]
        speed, scale = large["gx"] / large["ours"], large["ours"] / small["ours"]
        met = {True: "met", False: "NOT met"}
        print(
            f"goal: ours at {large['events']:,} >= {SPEED_GOAL:.0f}x faster than GX: "
            f"{speed:.0f}x {met[speed >= SPEED_GOAL]}"
        )
        print(
            f"goal: ours at {large['events']:,} within {SCALE_GOAL}x of ours at "
            f"{small['events']:,}: {scale:.2f}x {met[scale <= SCALE_GOAL]}"
        )
        print(
            f"buffers touched by one suite run: {small['blocks']:,} at {small['events']:,}, "
            f"{large['blocks']:,} at {large['events']:,} ({large['blocks'] / small['blocks']:.2f}x)"
        )
    if not all(result["agree"] for result in results):
        raise SystemExit("verdicts differ between our suite and GX")
    print("verdicts: the same for every check at every size")


if __name__ == "__main__":
    main()
