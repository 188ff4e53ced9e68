"""Reads for the dashboard pages: plain, JSON-friendly data for one set of filters.

Definitions (the data-quality test recomputes each one from raw events):
- A period is [filters.start, filters.end) on event time (UTC); device/country filters match the
  event's own fields, except for session numbers, where they match the session's first event.
- events, revenue, orders (purchase events), event mix, products, devices, countries: events
  in the period. users: distinct people of those events (an event's person: the id its user
  id, else anonymous id, is linked to by identify/alias, else that id; ADR 0015).
- custom events: per name outside the seven e-commerce types, its events, users and events
  per bucket (reports.selectors.custom_events).
- sessions: sessions whose first event (by timestamp, then id) is in the period. A session's
  funnel step is the furthest of page_view < product_view < add_to_cart < checkout_start <
  purchase it contains; it converted when it contains a purchase.
- new users: users active in the period whose first event ever is in the period; returning:
  active in the period, first seen before it.
- quality: quarantined = RejectedEvent rows still in quarantine received in the period (they have
  no trustworthy device/country, so those filters do not apply); warned = events of the period
  that carry warnings.

Numbers come from rollups (events up to the rollup watermark) plus the raw tail after it, so
they are exact and fresh even while the rollup worker lags (the other modules of
reports.selectors, ADR 0003).

Contract notes (additions only, no renames): DashboardFilters also has `bucket` ("hour" for
periods up to two days, else "day") and `bucket_size`; presets are aligned to whole buckets
(24h = the 24 hours up to and including the current one; 7d/30d/90d = whole UTC days up to
and including today; custom = whole days, end date included). Percentages in quality blocks
are 0-100; conversion rates are 0-1. `freshness()` and `dashboard_cache_warm()` are extra.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from django.utils import timezone

from events.facade import events_all
from quality import selectors as quality_selectors
from reports.filters import DashboardFilters, preset_filters
from reports.models.grains import CART_STEP, FUNNEL_STEPS, PRODUCT_EVENT_TYPES
from reports.selectors.custom_events import custom_events
from reports.selectors.metrics import (
    category_revenue,
    dimension_events,
    event_buckets,
    product_rows,
)
from reports.selectors.page_blocks import (
    bucket_starts,
    change_pct,
    funnel_steps,
    kpi_values,
    money,
    pct,
    period_totals,
    quality_block,
    quarantined_by_type_of_period,
    top_products,
)
from reports.selectors.sessions import session_steps
from reports.selectors.tail import read_snapshot
from reports.selectors.tail_summary import tail_summary_share
from reports.selectors.users import new_vs_returning, users
from reports.selectors.watermark import rollup_lag

QUALITY_TARGET = 0.995
LIVE_MINUTES = 30
LIVE_NEWEST = 20
P = ParamSpec("P")
R = TypeVar("R")


def _snapshot(function: Callable[P, R]) -> Callable[P, R]:
    """Run a public selector on one consistent snapshot (see tail.read_snapshot)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with read_snapshot():
            return function(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------------
# Public selectors.


@_snapshot
def overview(filters: DashboardFilters) -> dict[str, Any]:
    """KPIs with change against the previous period, series, event mix, quality."""
    current = period_totals(filters)
    previous = period_totals(filters.previous())
    values, previous_values = kpi_values(current), kpi_values(previous)
    kpis = {
        name: {
            "value": value,
            "previous": previous_values[name],
            "change_pct": change_pct(value, previous_values[name]),
        }
        for name, value in values.items()
    }
    per_bucket: dict[dt.datetime, list] = {
        start: [0, Decimal(0)] for start in bucket_starts(filters)
    }
    mix: dict[str, int] = defaultdict(int)
    for row in current["buckets"]:
        cell = per_bucket.setdefault(row["bucket"], [0, Decimal(0)])
        cell[0] += row["events"]
        cell[1] += row["revenue"]
        mix[row["event_type"]] += row["events"]
    ordered = sorted(per_bucket)
    quarantined = quarantined_by_type_of_period(filters)
    q_total = sum(quarantined.values())
    q_purchases = quarantined.get("purchase", 0)
    purchase_share = pct(q_purchases, q_purchases + current["purchases"])
    note = (
        f"revenue excludes {purchase_share}% of purchases, held in quarantine; "
        f"{pct(q_total, q_total + current['events'])}% of all events are quarantined"
    )
    return {
        "kpis": kpis,
        "series": {
            "bucket": filters.bucket,
            "labels": [start.isoformat() for start in ordered],
            "events": [per_bucket[start][0] for start in ordered],
            "revenue": [money(per_bucket[start][1]) for start in ordered],
        },
        "event_mix": [
            {"event_type": event_type, "count": count}
            for event_type, count in sorted(mix.items(), key=lambda item: (-item[1], item[0]))
        ],
        "custom_events": custom_events(filters, current["buckets"], ordered),
        "quality": quality_block(
            events=current["events"],
            warned=current["warned"],
            quarantined=q_total,
            metric="overview",
            note=note if current["events"] or q_total else "",
        ),
    }


@_snapshot
def funnel(filters: DashboardFilters, split_by: str | None = None) -> dict[str, Any]:
    """Sessions started in the period by furthest funnel step, optionally split."""
    if split_by not in (None, "device", "country"):
        split_by = None
    total = session_steps(filters).get(None, {})
    splits = []
    if split_by:
        by_key = session_steps(filters, split_by)
        for key in sorted(
            by_key, key=lambda k: (-sum(c["sessions"] for c in by_key[k].values()), k)
        ):
            splits.append({"key": key, "steps": funnel_steps(by_key[key])})
    buckets = event_buckets(filters)
    events = sum(row["events"] for row in buckets)
    quarantined = quarantined_by_type_of_period(filters)
    return {
        "steps": funnel_steps(total),
        "splits": splits,
        "quality": quality_block(
            events=events,
            warned=sum(row["warned"] for row in buckets),
            quarantined=sum(quarantined.values()),
            metric="funnel",
        ),
    }


@_snapshot
def products(filters: DashboardFilters, limit: int = 10) -> dict[str, Any]:
    """Top products by views, adds and purchases; cart abandonment; revenue by category."""
    top = top_products(product_rows(filters), limit)
    steps = session_steps(filters).get(None, {})
    carts = sum(cell["sessions"] for step, cell in steps.items() if step >= CART_STEP)
    purchased = steps.get(len(FUNNEL_STEPS), {}).get("sessions", 0)
    categories = category_revenue(filters)
    buckets = event_buckets(filters)
    product_buckets = [row for row in buckets if row["event_type"] in PRODUCT_EVENT_TYPES]
    quarantined = quarantined_by_type_of_period(filters)
    q_products = sum(quarantined.get(event_type, 0) for event_type in PRODUCT_EVENT_TYPES)
    return {
        "top_viewed": top["product_view"],
        "top_added": top["add_to_cart"],
        "top_purchased": top["purchase"],
        "cart_abandonment": {
            "carts": carts,
            "purchased": purchased,
            "abandonment_rate": (round(1 - purchased / carts, 6) if carts else None),
        },
        "revenue_by_category": [
            {"category": category, "revenue": money(revenue)}
            for category, revenue in sorted(
                categories.items(), key=lambda item: (-item[1], item[0])
            )
        ],
        "quality": quality_block(
            events=sum(row["events"] for row in product_buckets),
            warned=sum(row["warned"] for row in product_buckets),
            quarantined=q_products,
            metric="products",
        ),
    }


@_snapshot
def audience(filters: DashboardFilters) -> dict[str, Any]:
    """Events and users per device and per country; new vs returning users."""
    sections = {}
    for name, field in (("devices", "device_type"), ("countries", "country")):
        events = dimension_events(filters, field)
        users_by_key = users(filters, field)
        sections[name] = [
            {field: key, "events": count, "users": users_by_key.get(key, 0)}
            for key, count in sorted(events.items(), key=lambda item: (-item[1], item[0]))
        ]
    buckets = event_buckets(filters)
    quarantined = quarantined_by_type_of_period(filters)
    return {
        **sections,
        "new_vs_returning": new_vs_returning(filters),
        "quality": quality_block(
            events=sum(row["events"] for row in buckets),
            warned=sum(row["warned"] for row in buckets),
            quarantined=sum(quarantined.values()),
            metric="audience",
        ),
    }


def live(now: dt.datetime | None = None) -> dict[str, Any]:
    """Events per minute over the last 30 minutes (zero-filled) and the newest events.

    Per-minute counts come from the quality app's minute rollup plus the raw tail after its
    watermark (quality.selectors.events_per_minute): exact, fresh, and a 30-row read even after
    a burst of hundreds of thousands of events, once the rollup task has folded them.
    """
    now = now or timezone.now()
    last_minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    first_minute = last_minute - dt.timedelta(minutes=LIVE_MINUTES - 1)
    end = last_minute + dt.timedelta(minutes=1)
    counts = quality_selectors.events_per_minute(first_minute, end)
    minutes = [first_minute + dt.timedelta(minutes=i) for i in range(LIVE_MINUTES)]
    newest = list(
        events_all()
        .order_by("-timestamp", "-id")
        .values("event_type", "timestamp", "user_id", "country", "device_type")[:LIVE_NEWEST]
    )
    total = sum(entry["events"] for entry in counts.values())
    warned = sum(entry["warned"] for entry in counts.values())
    window = DashboardFilters(first_minute, end, "live")
    quarantined = sum(quarantined_by_type_of_period(window).values())
    empty = {"events": 0}
    return {
        "per_minute": [
            {"minute": minute.isoformat(), "count": counts.get(minute, empty)["events"]}
            for minute in minutes
        ],
        "newest": newest,
        "quality": quality_block(
            events=total, warned=warned, quarantined=quarantined, metric="live"
        ),
    }


def freshness(now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    newest = events_all().order_by("-timestamp").values_list("timestamp", flat=True).first()
    return {
        "newest_event": newest,
        "lag_seconds": (now - newest).total_seconds() if newest else None,
        "rollups": rollup_lag(now),  # how far the dashboards' rollups are behind
    }


@_snapshot
def quality_page(filters: DashboardFilters) -> dict[str, Any]:
    """Validation pass rate, failing rules, quarantine, incidents, freshness, check runs."""
    return {
        "pass_rate_series": quality_selectors.validation_pass_rate_series(
            filters.start, filters.end, filters.bucket
        ),
        "target": QUALITY_TARGET,
        "top_failing_rules": quality_selectors.rules_failing_top(filters.start, filters.end, 10),
        "quarantine": quality_selectors.quarantine_summary(filters.start, filters.end),
        "incidents": quality_selectors.incidents_open(limit=20),
        "freshness": freshness(),
        "data_freshness": quality_selectors.data_freshness(filters.start, filters.end),
        "check_runs": quality_selectors.check_runs_recent(10),
        "retention": quality_selectors.retention_summary(),
    }


def check_page(check_id: int) -> dict[str, Any] | None:
    """One dataset check's page: its history from the quality app (None: no such check)."""
    return quality_selectors.check_history(check_id)


def dashboard_cache_warm(
    presets: tuple[str, ...] = ("24h", "7d", "30d", "90d"), *, now: dt.datetime | None = None
) -> int:
    """Read every page for the standard presets so their rollup parts, and the summary of the
    raw tail, are cached for the current rollup state (the rollup task calls this after each
    fold). Returns reads done."""
    reads = 0
    for preset in presets:
        filters = preset_filters(preset, now=now)
        with read_snapshot():
            overview(filters)
            funnel(filters, "device")
            funnel(filters, "country")
            products(filters)
            audience(filters)
        reads += 5
    with read_snapshot():
        tail_summary_share()
    return reads


__all__ = [
    "audience",
    "dashboard_cache_warm",
    "freshness",
    "funnel",
    "live",
    "overview",
    "products",
    "quality_page",
]
