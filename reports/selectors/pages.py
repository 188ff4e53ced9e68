"""Reads for the dashboard pages: plain, JSON-friendly data for one set of filters.

Definitions (the data-quality test recomputes each one from raw events):
- A period is [filters.start, filters.end) on event time (UTC); device/country filters match the
  event's own fields, except for session numbers, where they match the session's first event.
- events, revenue, orders (purchase events), event mix, products, devices, countries: events
  in the period. users: distinct user_id of those events.
- sessions: sessions whose first event (by timestamp, then id) is in the period. A session's
  funnel step is the furthest of page_view < product_view < add_to_cart < checkout_start <
  purchase it contains; it converted when it contains a purchase.
- new users: users active in the period whose first event ever is in the period; returning:
  active in the period, first seen before it.
- quality: quarantined = RejectedEvent rows still in quarantine received in the period (they have
  no trustworthy device/country, so those filters do not apply); warned = events of the period
  that carry warnings.

Numbers come from rollups (events up to the rollup watermark) plus the raw tail after it, so
they are exact and fresh even while the rollup worker lags (reports/readers.py, ADR 0003).

Contract notes (additions only, no renames): DashboardFilters also has `bucket` ("hour" for
periods up to two days, else "day") and `bucket_size`; presets are aligned to whole buckets
(24h = the 24 hours up to and including the current one; 7d/30d/90d = whole UTC days up to
and including today; custom = whole days, end date included). Percentages in quality blocks
are 0-100; conversion rates are 0-1. `freshness()` and `dashboard_cache_warm()` are extra.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from django.utils import timezone

from events.models import Event
from quality import selectors as quality_selectors
from reports import raw, readers
from reports.filters import DAY, HOUR, DashboardFilters, floor_hour, preset_filters

FUNNEL_STEPS = raw.FUNNEL_STEPS
PRODUCT_EVENT_TYPES = raw.PRODUCT_EVENT_TYPES
QUALITY_TARGET = 0.995
LIVE_MINUTES = 30
LIVE_NEWEST = 20
P = ParamSpec("P")
R = TypeVar("R")

# ---------------------------------------------------------------------------------------------
# Data access (rollups + raw tail) lives in reports.readers.

_event_buckets = readers.event_buckets
_dimension_events = readers.dimension_events
_users = readers.users
_new_vs_returning = readers.new_vs_returning
_session_steps = readers.session_steps
_product_rows = readers.product_rows


def _snapshot(function: Callable[P, R]) -> Callable[P, R]:
    """Run a public selector on one consistent snapshot (see readers.read_snapshot)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with readers.read_snapshot():
            return function(*args, **kwargs)

    return wrapper


def _quarantined_by_type(filters: DashboardFilters) -> dict[str, int]:
    """From the receipt rollups (quality app), not by counting rejected events."""
    return dict(quality_selectors.quarantined_by_type(filters.start, filters.end))


# ---------------------------------------------------------------------------------------------
# Incidents come from the quality app (quality.selectors).

INCIDENT_METRICS: dict[str, tuple[str, ...]] = {
    "overview": ("events",),  # every open incident touches the totals
    "funnel": ("funnel",),
    "products": ("products", "revenue"),
    "audience": ("devices", "countries", "sessions"),
    "live": ("events",),
}
INCIDENTS_PER_BLOCK = 10


def _incidents(block: str | None = None) -> list[dict[str, Any]]:
    """Open incidents touching a dashboard block, newest first, without repeats."""
    if block is None:
        return quality_selectors.incidents_open(limit=INCIDENTS_PER_BLOCK)
    seen: dict[int, dict[str, Any]] = {}
    for metric in INCIDENT_METRICS[block]:
        for incident in quality_selectors.incidents_open(limit=INCIDENTS_PER_BLOCK, metric=metric):
            seen.setdefault(incident["id"], incident)
    ordered = sorted(seen.values(), key=lambda incident: incident["last_seen_at"], reverse=True)
    return ordered[:INCIDENTS_PER_BLOCK]


# ---------------------------------------------------------------------------------------------
# Shaping helpers.


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _change_pct(value: float, previous: float) -> float | None:
    return round(100.0 * (value - previous) / previous, 2) if previous else None


def _money(value: Decimal | float | None) -> float:
    return round(float(value or 0), 2)


def _quality_block(
    *,
    events: int,
    warned: int,
    quarantined: int,
    metric: str | None,
    note: str = "",
) -> dict[str, Any]:
    total = events + quarantined
    if not note:
        note = (
            f"{_pct(quarantined, total)}% of this period's events are held in quarantine; "
            f"{_pct(warned, total)}% carried warnings"
            if total
            else "no events in this period"
        )
    return {
        "quarantined": quarantined,
        "warned": warned,
        "total": total,
        "quarantined_pct": _pct(quarantined, total),
        "warned_pct": _pct(warned, total),
        "note": note,
        "incidents": _incidents(metric),
    }


def _bucket_starts(filters: DashboardFilters) -> list[dt.datetime]:
    step = HOUR if filters.bucket == "hour" else DAY
    starts, moment = [], filters.start
    while moment < filters.end:
        starts.append(moment)
        moment += step
    return starts


def _totals(filters: DashboardFilters) -> dict[str, Any]:
    """Every additive total of a period, plus users and sessions."""
    buckets = _event_buckets(filters)
    events = sum(row["events"] for row in buckets)
    purchases = sum(row["events"] for row in buckets if row["event_type"] == "purchase")
    revenue = sum((row["revenue"] for row in buckets), Decimal(0))
    steps = _session_steps(filters).get(None, {})
    sessions = sum(cell["sessions"] for cell in steps.values())
    converted = steps.get(len(FUNNEL_STEPS), {}).get("sessions", 0)
    return {
        "buckets": buckets,
        "events": events,
        "purchases": purchases,
        "revenue": revenue,
        "warned": sum(row["warned"] for row in buckets),
        "users": _users(filters),
        "sessions": sessions,
        "converted": converted,
    }


def _kpi_values(totals: dict[str, Any]) -> dict[str, float]:
    return {
        "events": totals["events"],
        "sessions": totals["sessions"],
        "users": totals["users"],
        "conversion_rate": round(_ratio(totals["converted"], totals["sessions"]) or 0.0, 6),
        "revenue": _money(totals["revenue"]),
        "average_order_value": _money(
            totals["revenue"] / totals["purchases"] if totals["purchases"] else 0
        ),
    }


# ---------------------------------------------------------------------------------------------
# Public selectors.


@_snapshot
def overview(filters: DashboardFilters) -> dict[str, Any]:
    """KPIs with change against the previous period, series, event mix, quality."""
    current = _totals(filters)
    previous = _totals(filters.previous())
    values, previous_values = _kpi_values(current), _kpi_values(previous)
    kpis = {
        name: {
            "value": value,
            "previous": previous_values[name],
            "change_pct": _change_pct(value, previous_values[name]),
        }
        for name, value in values.items()
    }
    per_bucket: dict[dt.datetime, list] = {
        start: [0, Decimal(0)] for start in _bucket_starts(filters)
    }
    mix: dict[str, int] = defaultdict(int)
    for row in current["buckets"]:
        cell = per_bucket.setdefault(row["bucket"], [0, Decimal(0)])
        cell[0] += row["events"]
        cell[1] += row["revenue"]
        mix[row["event_type"]] += row["events"]
    ordered = sorted(per_bucket)
    quarantined = _quarantined_by_type(filters)
    q_total = sum(quarantined.values())
    q_purchases = quarantined.get("purchase", 0)
    purchase_share = _pct(q_purchases, q_purchases + current["purchases"])
    note = (
        f"revenue excludes {purchase_share}% of purchases, held in quarantine; "
        f"{_pct(q_total, q_total + current['events'])}% of all events are quarantined"
    )
    return {
        "kpis": kpis,
        "series": {
            "bucket": filters.bucket,
            "labels": [start.isoformat() for start in ordered],
            "events": [per_bucket[start][0] for start in ordered],
            "revenue": [_money(per_bucket[start][1]) for start in ordered],
        },
        "event_mix": [
            {"event_type": event_type, "count": count}
            for event_type, count in sorted(mix.items(), key=lambda item: (-item[1], item[0]))
        ],
        "quality": _quality_block(
            events=current["events"],
            warned=current["warned"],
            quarantined=q_total,
            metric="overview",
            note=note if current["events"] or q_total else "",
        ),
    }


def _funnel_steps(cells: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    steps = []
    reached = [
        sum(cell["sessions"] for step, cell in cells.items() if step >= index + 1)
        for index in range(len(FUNNEL_STEPS))
    ]
    for index, name in enumerate(FUNNEL_STEPS):
        previous = reached[index - 1] if index else reached[0]
        steps.append(
            {
                "step": name,
                "sessions": reached[index],
                "step_conversion": _ratio(reached[index], previous),
                "overall_conversion": _ratio(reached[index], reached[0]),
                "drop_off": previous - reached[index],
            }
        )
    return steps


@_snapshot
def funnel(filters: DashboardFilters, split_by: str | None = None) -> dict[str, Any]:
    """Sessions started in the period by furthest funnel step, optionally split."""
    if split_by not in (None, "device", "country"):
        split_by = None
    total = _session_steps(filters).get(None, {})
    splits = []
    if split_by:
        by_key = _session_steps(filters, split_by)
        for key in sorted(
            by_key, key=lambda k: (-sum(c["sessions"] for c in by_key[k].values()), k)
        ):
            splits.append({"key": key, "steps": _funnel_steps(by_key[key])})
    buckets = _event_buckets(filters)
    events = sum(row["events"] for row in buckets)
    quarantined = _quarantined_by_type(filters)
    return {
        "steps": _funnel_steps(total),
        "splits": splits,
        "quality": _quality_block(
            events=events,
            warned=sum(row["warned"] for row in buckets),
            quarantined=sum(quarantined.values()),
            metric="funnel",
        ),
    }


def _top_products(rows: list[readers.ProductRow], limit: int) -> dict[str, list[dict[str, Any]]]:
    """The `limit` products with the most events of each product event type (ties by product
    id), in one pass over the period's product rows; a product's category is the greatest one
    it was seen with."""
    per_type: dict[str, dict[str, list]] = {event_type: {} for event_type in PRODUCT_EVENT_TYPES}
    for product_id, category, event_type, events, cents in rows:
        products = per_type.get(event_type)
        if products is None or not product_id:
            continue
        item = products.get(product_id)
        if item is None:
            products[product_id] = [category, events, cents]
            continue
        if category > item[0]:
            item[0] = category
        item[1] += events
        item[2] += cents
    top = {}
    for event_type, products in per_type.items():
        ordered = heapq.nsmallest(limit, products.items(), key=lambda kv: (-kv[1][1], kv[0]))
        top[event_type] = [
            {
                "product_id": product_id,
                "category": category,
                "count": count,
                **({"revenue": round(cents / 100, 2)} if event_type == "purchase" else {}),
            }
            for product_id, (category, count, cents) in ordered
        ]
    return top


@_snapshot
def products(filters: DashboardFilters, limit: int = 10) -> dict[str, Any]:
    """Top products by views, adds and purchases; cart abandonment; revenue by category."""
    top = _top_products(_product_rows(filters), limit)
    steps = _session_steps(filters).get(None, {})
    carts = sum(cell["sessions"] for step, cell in steps.items() if step >= 3)
    purchased = steps.get(len(FUNNEL_STEPS), {}).get("sessions", 0)
    categories = readers.category_revenue(filters)
    buckets = _event_buckets(filters)
    product_buckets = [row for row in buckets if row["event_type"] in PRODUCT_EVENT_TYPES]
    quarantined = _quarantined_by_type(filters)
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
            {"category": category, "revenue": _money(revenue)}
            for category, revenue in sorted(
                categories.items(), key=lambda item: (-item[1], item[0])
            )
        ],
        "quality": _quality_block(
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
        events = _dimension_events(filters, field)
        users = _users(filters, field)
        sections[name] = [
            {field: key, "events": count, "users": users.get(key, 0)}
            for key, count in sorted(events.items(), key=lambda item: (-item[1], item[0]))
        ]
    buckets = _event_buckets(filters)
    quarantined = _quarantined_by_type(filters)
    return {
        **sections,
        "new_vs_returning": _new_vs_returning(filters),
        "quality": _quality_block(
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
        Event.objects.order_by("-timestamp", "-id").values(
            "event_type", "timestamp", "user_id", "country", "device_type"
        )[:LIVE_NEWEST]
    )
    total = sum(entry["events"] for entry in counts.values())
    warned = sum(entry["warned"] for entry in counts.values())
    window = DashboardFilters(first_minute, end, "live")
    quarantined = sum(_quarantined_by_type(window).values())
    empty = {"events": 0}
    return {
        "per_minute": [
            {"minute": minute.isoformat(), "count": counts.get(minute, empty)["events"]}
            for minute in minutes
        ],
        "newest": newest,
        "quality": _quality_block(
            events=total, warned=warned, quarantined=quarantined, metric="live"
        ),
    }


def freshness(now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    newest = Event.objects.order_by("-timestamp").values_list("timestamp", flat=True).first()
    return {
        "newest_event": newest,
        "lag_seconds": (now - newest).total_seconds() if newest else None,
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
        "check_runs": quality_selectors.check_runs_recent(10),
    }


def dashboard_cache_warm(
    presets: tuple[str, ...] = ("24h", "7d", "30d", "90d"), *, now: dt.datetime | None = None
) -> int:
    """Read every page for the standard presets so their rollup parts, and the summary of the
    raw tail, are cached for the current rollup state (the rollup task calls this after each
    fold). Returns reads done."""
    reads = 0
    for preset in presets:
        filters = preset_filters(preset, now=now)
        with readers.read_snapshot():
            overview(filters)
            funnel(filters, "device")
            funnel(filters, "country")
            products(filters)
            audience(filters)
        reads += 5
    with readers.read_snapshot():
        readers.tail_summary_share()
    return reads


__all__ = [
    "audience",
    "dashboard_cache_warm",
    "floor_hour",
    "freshness",
    "funnel",
    "live",
    "overview",
    "products",
    "quality_page",
]
