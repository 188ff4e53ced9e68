"""Unresolved incidents for the dashboards, with the charts (metrics) each one touches."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from quality.models import QualityIncident

# Which fields / event types a dashboard metric is computed from: an incident touching any of
# them (or touching everything: no fields and no event types) is linked from that chart.
METRIC_TOUCHES: dict[str, set[str]] = {
    "revenue": {"revenue", "price", "quantity", "order_id", "currency", "purchase"},
    "orders": {"order_id", "purchase"},
    "conversion": {"session_id", "checkout_start", "purchase", "add_to_cart"},
    "funnel": {"session_id", "product_view", "add_to_cart", "checkout_start", "purchase"},
    "events": set(),
    "sessions": {"session_id", "user_id"},
    "products": {"product_id", "category", "product_view", "add_to_cart"},
    "devices": {"device_type"},
    "countries": {"country"},
    "search": {"search_query", "search"},
}

UNRESOLVED = (QualityIncident.Status.OPEN, QualityIncident.Status.ACKNOWLEDGED)


def _touches(incident: dict[str, Any], metric: str) -> bool:
    touched = set(incident["fields"]) | set(incident["event_types"])
    if not touched:
        return True  # freshness, volume, pass rate: every chart is affected
    wanted = METRIC_TOUCHES.get(metric, {metric})
    return not wanted or bool(touched & wanted)


def incidents_open(limit: int = 50, metric: str | None = None) -> list[dict[str, Any]]:
    """Unresolved incidents, newest activity first. With `metric` (a dashboard metric such as
    "revenue", or a field / event type name), only those touching it."""
    rows = QualityIncident.objects.filter(status__in=UNRESOLVED).order_by("-last_seen_at")
    values = rows.values(
        "id",
        "title",
        "source_type",
        "source_key",
        "severity",
        "status",
        "opened_at",
        "last_seen_at",
        "occurrences",
        "fields",
        "event_types",
        "last_metric_value",
        "threshold",
    )
    incidents = []
    for row in values[: limit if metric is None else limit * 10]:
        source = row.pop("source_type")
        incident = {
            **row,
            "source": source,
            "admin_url": reverse("admin:quality_qualityincident_change", args=[row["id"]]),
        }
        if metric is None or _touches(incident, metric):
            incidents.append(incident)
        if len(incidents) >= limit:
            break
    return incidents
