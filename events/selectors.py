"""Reads over stored events: stats and the newest events (health probes: events.health)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone

from events.export_selectors import EventFilters, events_recent_filtered
from events.facade import EVENT_COLUMN_NAMES
from events.models import Event, IngestionKey, RejectedEvent

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
# start-up (reports, in ReportsConfig.ready(): rollups plus the raw tail, ADR 0011); events
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


def events_recent(
    *,
    limit: int,
    offset: int = 0,
    filters: EventFilters | None = None,
    order_field: str = "received_at",
) -> list[dict[str, Any]]:
    """The newest events, newest first by receipt (default) or by event time, filtered."""
    return events_recent_filtered(
        filters or EventFilters(),
        RECENT_FIELDS,
        limit=limit,
        offset=offset,
        order_field=order_field,
    )


def ingestion_keys_list(*, include_revoked: bool = False) -> list[dict[str, Any]]:
    """Keys as operators list them: never the hash, only the shown prefix."""
    keys = IngestionKey.objects.order_by("name", "created_at")
    if not include_revoked:
        keys = keys.filter(is_active=True)
    return list(
        keys.values(
            "id",
            "name",
            "prefix",
            "scopes",
            "kind",
            "allowed_origins",
            "is_active",
            "expires_at",
            "replaced_by_id",
            "created_at",
            "last_used_at",
        )
    )


def ingestion_key_find(ref: str) -> int | None:
    """The id of the one key with this id or shown prefix; None when none or several match."""
    keys = IngestionKey.objects.filter(prefix=ref)
    if ref.isdigit():
        keys = IngestionKey.objects.filter(pk=int(ref))
    found = list(keys.values_list("pk", flat=True)[:2])
    return found[0] if len(found) == 1 else None
