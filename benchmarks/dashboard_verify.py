"""Dashboard numbers at scale equal raw SQL: the assertions of tests/dashboard_reference.py
(every number of the overview, funnel, products and audience pages, against plain SQL over
events_event and events_rejectedevent) run on a benchmark database, rollups as they stand.

    BENCH_DASH_DB=analytics_bench50m .venv/bin/python benchmarks/dashboard_verify.py --presets 7d

The tests run the same assertions on a generated shop of a few thousand events in every rollup
state; this says they still hold on tens of millions of rows (integer overflow, a bucket or a
partition boundary, a week rollup across a month). The raw side computes every session's first
event over the whole table several times per preset: minutes each at 50M.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# First: this import points Django at the benchmark database (BENCH_DASH_DB) and sets it up.
import benchmarks._dashboard_load  # noqa: E402, F401

# isort: split
from django.db import connection  # noqa: E402

from reports.filters import filters_from_query  # noqa: E402
from reports.selectors import pages  # noqa: E402
from tests.dashboard_reference import assert_dashboard_matches_raw, ref_totals  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="7d", help="comma-separated, as dashboard.py's")
    parser.add_argument("--work-mem", default="256MB", help="for the raw side's sorts")
    args = parser.parse_args()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_event")
        print(f"{cursor.fetchone()[0]:,} events")
        cursor.execute(f"SET work_mem = '{args.work_mem}'")
    for preset in args.presets.split(","):
        f = filters_from_query(dict(part.split("=") for part in f"preset={preset}".split("&")))
        started = time.perf_counter()
        kpis = pages.overview(f)["kpis"]
        dashboard_s = time.perf_counter() - started
        started = time.perf_counter()
        raw = ref_totals(f)
        raw_s = time.perf_counter() - started
        for name in ("events", "users", "sessions", "revenue", "conversion_rate"):
            print(f"  {preset} {name}: dashboard {kpis[name]['value']:,}, raw SQL {raw[name]:,}")
        print(f"  overview {dashboard_s * 1000:.0f} ms, its KPIs by raw SQL {raw_s:.1f} s")
        started = time.perf_counter()
        assert_dashboard_matches_raw(f)
        print(
            f"{preset}: every overview, funnel, products and audience number equals raw SQL "
            f"({time.perf_counter() - started:.0f} s)"
        )


if __name__ == "__main__":
    main()
