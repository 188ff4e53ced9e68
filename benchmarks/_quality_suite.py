"""Our side of `benchmarks/quality_vs_gx.py`, run in the project's virtualenv against a
scratch database (DATABASE_URL): folds what is pending into the intake and check rollups
(timed: the cost moved off the read path), then judges the enabled checks as of --now,
--repeat times, without storing runs. Prints one JSON object."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from quality.services.checks import checks_evaluate  # noqa: E402
from quality.services.intake import intake_advance  # noqa: E402


def _blocks_touched() -> int:
    """Shared-buffer hits + reads of this database so far, from a fresh session: a backend
    reports its counters when its session ends, so the measured session is closed first."""
    connection.close()
    time.sleep(1.5)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database()"
        )
        value = cursor.fetchone()[0]
    connection.close()
    time.sleep(1.5)
    return value


def suite_blocks(now: dt.datetime) -> int:
    """Buffer accesses of one suite run: a load-independent measure of the work it does (plus
    a few hundred for a new session's catalog lookups)."""
    before = _blocks_touched()
    checks_evaluate(now=now)
    return _blocks_touched() - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--now", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    now = dt.datetime.fromisoformat(args.now)
    fold = intake_advance(max_seconds=float("inf"))
    with connection.cursor() as cursor:  # as autovacuum would after the tables filled up
        cursor.execute("ANALYZE")
    blocks = suite_blocks(now)
    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        results = checks_evaluate(now=now)
        runs.append({"seconds": time.perf_counter() - started, "results": results})
    checks = [
        {
            "name": check.name,
            "kind": check.kind,
            "params": check.params,
            "threshold": check.threshold,
            "outcome": result.outcome,
            "metric": result.metric,
            "message": result.message,
            "ms": [run["results"][i][2] for run in runs],
        }
        for i, (check, result, _) in enumerate(runs[-1]["results"])
    ]
    json.dump(
        {
            "fold": fold.as_dict(),
            "blocks": blocks,
            "totals": [run["seconds"] for run in runs],
            "checks": checks,
        },
        sys.stdout,
        default=str,
    )


if __name__ == "__main__":
    main()
