"""Dashboard numbers at scale equal raw SQL: the assertions of tests/dashboard_reference.py
(every number of the overview, funnel, products and audience pages, against plain SQL over
events_event and events_rejectedevent) run on a benchmark database, rollups as they stand.

    DB_ROLE=worker BENCH_DASH_DB=analytics_bench50m \
        .venv/bin/python benchmarks/dashboard_verify.py --presets '7d,90d&device=mobile' [--full]

The tests run the same assertions on a generated shop of a few thousand events in every rollup
state; this says they still hold on tens of millions of rows (integer overflow, a bucket or a
partition boundary, a week rollup across a month). By default the period numbers that raw SQL
reads from the period's rows; --full runs the whole reference, whose session numbers compute
every session's first event over the whole table several times per preset (minutes at 50M).
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
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402

from reports.filters import filters_from_query  # noqa: E402
from reports.selectors import pages  # noqa: E402
from tests.dashboard_reference import (  # noqa: E402
    EVENTS_WITH_PEOPLE,
    _rows,
    _where,
    assert_dashboard_matches_raw,
    ref_group,
    ref_series,
)


def period_numbers_check(f) -> None:
    """The overview's period numbers (events, orders, revenue, users, event mix, the series)
    and the audience page's devices and countries, each against its raw SQL, timed both ways.
    Sessions are left to --full: their raw side reads every session's first event."""
    started = time.perf_counter()
    overview = pages.overview(f)
    audience = pages.audience(f)
    dashboard_s = time.perf_counter() - started
    started = time.perf_counter()
    where, params = _where(f)
    events, purchases, revenue, users = _rows(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE event_type = 'purchase'), "
        "COALESCE(SUM(revenue) FILTER (WHERE event_type = 'purchase'), 0), "
        f"COUNT(DISTINCT person) FROM {EVENTS_WITH_PEOPLE} WHERE {where}",
        params,
    )[0]
    mix = _rows(
        f"SELECT event_type, COUNT(*) FROM events_event WHERE {where} "
        "GROUP BY event_type ORDER BY COUNT(*) DESC, event_type",
        params,
    )
    series = ref_series(f)
    devices, countries = ref_group(f, "device_type"), ref_group(f, "country")
    raw_s = time.perf_counter() - started
    kpis = overview["kpis"]
    pairs = {
        "events": (kpis["events"]["value"], events),
        "users": (kpis["users"]["value"], users),
        "revenue": (kpis["revenue"]["value"], round(float(revenue), 2)),
        "average order value": (
            kpis["average_order_value"]["value"],
            round(float(revenue / purchases), 2) if purchases else 0.0,
        ),
    }
    for name, (shown, raw) in pairs.items():
        print(f"  {name}: dashboard {shown:,}, raw SQL {raw:,}")
        assert shown == raw, (name, shown, raw)
    assert [(m["event_type"], m["count"]) for m in overview["event_mix"]] == mix
    assert overview["series"]["events"] == series[1]
    assert audience["devices"] == devices
    assert audience["countries"] == countries
    print(
        f"  equal, and the event mix, the {len(series[1])}-bucket series, devices and countries: "
        f"pages {dashboard_s * 1000:.0f} ms (cold), raw SQL {raw_s:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="7d", help="comma-separated, as dashboard.py's")
    parser.add_argument("--full", action="store_true", help="also every session number")
    parser.add_argument("--work-mem", default="256MB", help="for the raw side's sorts")
    args = parser.parse_args()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_event")
        print(f"{cursor.fetchone()[0]:,} events")
        cursor.execute(f"SET work_mem = '{args.work_mem}'")
    for preset in args.presets.split(","):
        f = filters_from_query(dict(part.split("=") for part in f"preset={preset}".split("&")))
        print(f"{preset}:")
        cache.clear()
        period_numbers_check(f)
        if args.full:
            started = time.perf_counter()
            assert_dashboard_matches_raw(f)
            print(
                f"  every overview, funnel, products and audience number equals raw SQL "
                f"({time.perf_counter() - started:.0f} s)"
            )


if __name__ == "__main__":
    main()
