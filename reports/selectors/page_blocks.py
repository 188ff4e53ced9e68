"""Building blocks of the page selectors (`reports.selectors.pages`): period totals, the
quality block with its incidents, and the shaping of numbers into JSON-friendly rows."""

from __future__ import annotations

import datetime as dt
import heapq
from decimal import Decimal
from typing import Any

from quality import selectors as quality_selectors
from reports.filters import DAY, HOUR, DashboardFilters
from reports.models.grains import FUNNEL_STEPS, PRODUCT_EVENT_TYPES
from reports.selectors.metrics import ProductRow, event_buckets
from reports.selectors.sessions import session_steps
from reports.selectors.users import users


def quarantined_by_type_of_period(filters: DashboardFilters) -> dict[str, int]:
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


def incidents_of_block(block: str | None = None) -> list[dict[str, Any]]:
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


def pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def change_pct(value: float, previous: float) -> float | None:
    return round(100.0 * (value - previous) / previous, 2) if previous else None


def money(value: Decimal | float | None) -> float:
    return round(float(value or 0), 2)


def quality_block(
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
            f"{pct(quarantined, total)}% of this period's events are held in quarantine; "
            f"{pct(warned, total)}% carried warnings"
            if total
            else "no events in this period"
        )
    return {
        "quarantined": quarantined,
        "warned": warned,
        "total": total,
        "quarantined_pct": pct(quarantined, total),
        "warned_pct": pct(warned, total),
        "note": note,
        "incidents": incidents_of_block(metric),
    }


def bucket_starts(filters: DashboardFilters) -> list[dt.datetime]:
    step = HOUR if filters.bucket == "hour" else DAY
    starts, moment = [], filters.start
    while moment < filters.end:
        starts.append(moment)
        moment += step
    return starts


def period_totals(filters: DashboardFilters) -> dict[str, Any]:
    """Every additive total of a period, plus users and sessions."""
    buckets = event_buckets(filters)
    events = sum(row["events"] for row in buckets)
    purchases = sum(row["events"] for row in buckets if row["event_type"] == "purchase")
    revenue = sum((row["revenue"] for row in buckets), Decimal(0))
    steps = session_steps(filters).get(None, {})
    sessions = sum(cell["sessions"] for cell in steps.values())
    converted = steps.get(len(FUNNEL_STEPS), {}).get("sessions", 0)
    return {
        "buckets": buckets,
        "events": events,
        "purchases": purchases,
        "revenue": revenue,
        "warned": sum(row["warned"] for row in buckets),
        "users": users(filters),
        "sessions": sessions,
        "converted": converted,
    }


def kpi_values(totals: dict[str, Any]) -> dict[str, float]:
    return {
        "events": totals["events"],
        "sessions": totals["sessions"],
        "users": totals["users"],
        "conversion_rate": round(ratio(totals["converted"], totals["sessions"]) or 0.0, 6),
        "revenue": money(totals["revenue"]),
        "average_order_value": money(
            totals["revenue"] / totals["purchases"] if totals["purchases"] else 0
        ),
    }


def funnel_steps(cells: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
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
                "step_conversion": ratio(reached[index], previous),
                "overall_conversion": ratio(reached[index], reached[0]),
                "drop_off": previous - reached[index],
            }
        )
    return steps


def top_products(rows: list[ProductRow], limit: int) -> dict[str, list[dict[str, Any]]]:
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
