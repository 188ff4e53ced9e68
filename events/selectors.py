"""Reads over stored events: stats, the newest events, and health of the moving parts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone

from events.facade import EVENT_COLUMN_NAMES
from events.models import Event, RejectedEvent

# What /events/recent answers per event: the stored columns but the client's own clock and the
# warnings (the API answers those at ingestion).
RECENT_FIELDS = (
    "id",
    *(name for name in EVENT_COLUMN_NAMES if name not in ("client_timestamp", "warnings")),
)


# Stored events counted by type, by device and by country: {"event_type": {...},
# "device_type": {...}, "country": {...}}.
EventCounts = dict[str, dict[str, int]]
EVENT_COUNT_FIELDS = ("event_type", "device_type", "country")

# Who answers the counts: the app that keeps rollups of the events registers its reader at
# start-up (reports, in ReportsConfig.ready(): rollups plus the raw tail, ADR 0007); events
# cannot import it (layers, ADR 0006). Without one, three GROUP BYs over the table.
_event_counts_reader: Callable[[], EventCounts] | None = None


def event_counts_reader_register(reader: Callable[[], EventCounts] | None) -> None:
    """Have `reader()` answer the event counts of /events/stats (None: the raw GROUP BYs)."""
    global _event_counts_reader
    _event_counts_reader = reader


def by_count(counts: dict[str, int]) -> dict[str, int]:
    """Largest first (ties by key), without zero counts: the order /events/stats answers in."""
    return dict(sorted(((k, n) for k, n in counts.items() if n), key=lambda kn: (-kn[1], kn[0])))


def _counts_raw() -> EventCounts:
    return {
        field: by_count(dict(Event.objects.values_list(field).annotate(n=Count("id")).order_by()))
        for field in EVENT_COUNT_FIELDS
    }


def event_stats(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Totals over all stored events, plus how many events the validator refused. The counts
    come from the registered reader (rollups plus raw tail), not a scan of the table."""
    now = now or timezone.now()
    counts = (_event_counts_reader or _counts_raw)()
    by_type = counts["event_type"]
    total = sum(by_type.values())
    rejected = RejectedEvent.objects.filter(status=RejectedEvent.Status.QUARANTINED).count()
    seen = total + rejected
    newest = Event.objects.aggregate(newest=Max("timestamp"))["newest"]
    return {
        "total_events": total,
        "events_by_type": by_type,
        "events_by_device": counts["device_type"],
        "events_by_country": counts["country"],
        "events_last_hour": Event.objects.filter(
            timestamp__gte=now - dt.timedelta(hours=1), timestamp__lte=now
        ).count(),
        "newest_event_timestamp": newest.isoformat() if newest else None,
        "rejected_events": rejected,
        "validation_pass_rate": round(total / seen, 6) if seen else None,
        "generated_at": now.isoformat(),
    }


def events_recent(*, limit: int) -> list[dict[str, Any]]:
    """The newest events by event time, newest first."""
    rows = Event.objects.order_by("-timestamp", "-id").values(*RECENT_FIELDS)[:limit]
    events = []
    for row in rows:
        row["event_id"] = str(row["event_id"])
        for key in ("timestamp", "received_at"):
            row[key] = row[key].isoformat()
        for key in ("price", "revenue"):
            if row[key] is not None:
                row[key] = float(row[key])
        events.append(row)
    return events


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
