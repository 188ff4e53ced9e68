"""Reads over stored events: stats, the newest events, and health of the moving parts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone

from events.export_selectors import EventFilters, events_recent_filtered
from events.facade import EVENT_COLUMN_NAMES
from events.models import Event, RejectedEvent

# What /events/recent answers per event: the stored columns but the client's own clock and the
# warnings (the API answers those at ingestion).
RECENT_FIELDS = (
    "id",
    *(name for name in EVENT_COLUMN_NAMES if name not in ("client_timestamp", "warnings")),
)


def _counts_by(field: str) -> dict[str, int]:
    rows = Event.objects.values_list(field).annotate(n=Count("id")).order_by("-n")
    return {key: n for key, n in rows}


def event_stats(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Totals over all stored events, plus how many events the validator refused."""
    now = now or timezone.now()
    by_type = _counts_by("event_type")
    total = sum(by_type.values())
    rejected = RejectedEvent.objects.filter(status=RejectedEvent.Status.QUARANTINED).count()
    seen = total + rejected
    newest = Event.objects.aggregate(newest=Max("timestamp"))["newest"]
    return {
        "total_events": total,
        "events_by_type": by_type,
        "events_by_device": _counts_by("device_type"),
        "events_by_country": _counts_by("country"),
        "events_last_hour": Event.objects.filter(
            timestamp__gte=now - dt.timedelta(hours=1), timestamp__lte=now
        ).count(),
        "newest_event_timestamp": newest.isoformat() if newest else None,
        "rejected_events": rejected,
        "validation_pass_rate": round(total / seen, 6) if seen else None,
        "generated_at": now.isoformat(),
    }


def events_recent(
    *, limit: int, offset: int = 0, filters: EventFilters | None = None
) -> list[dict[str, Any]]:
    """The newest events by event time, newest first, optionally filtered."""
    return events_recent_filtered(
        filters or EventFilters(), RECENT_FIELDS, limit=limit, offset=offset
    )


def _database_status() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "down"; the reason goes in the body
        return {"status": "down", "error": str(exc)[:200]}
    return {"status": "ok", "vendor": connection.vendor}


def _broker_status() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"status": "ok", "mode": "eager (no REDIS_URL set)"}
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
    except redis.RedisError as exc:
        return {"status": "down", "error": str(exc)[:200]}
    return {"status": "ok", "mode": "redis"}


def system_health() -> dict[str, Any]:
    components = {"database": _database_status(), "broker": _broker_status()}
    healthy = all(component["status"] == "ok" for component in components.values())
    return {"status": "ok" if healthy else "degraded", "components": components}
