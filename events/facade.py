"""The events app's surface for the apps above it (quality, reports).

They never import `events.models` (an import-linter contract forbids it). What they need of the
raw tables comes from here: querysets to read (never to write: writes go through
`events.services`), and the SQL names of the tables and of their columns for set-based folds.
"""

from __future__ import annotations

from django.db.models import QuerySet

from events.models import Event, RejectedEvent

EVENTS_TABLE: str = Event._meta.db_table
REJECTED_EVENTS_TABLE: str = RejectedEvent._meta.db_table

# The one list of stored event columns with their PostgreSQL types, in insert order.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "uuid"),
    ("event_type", "text"),
    ("timestamp", "timestamptz"),
    ("client_timestamp", "timestamptz"),
    ("received_at", "timestamptz"),
    ("user_id", "text"),
    ("session_id", "text"),
    ("device_type", "text"),
    ("country", "text"),
    ("page_url", "text"),
    ("referrer", "text"),
    ("product_id", "text"),
    ("category", "text"),
    ("price", "numeric"),
    ("quantity", "integer"),
    ("currency", "text"),
    ("order_id", "text"),
    ("revenue", "numeric"),
    ("search_query", "text"),
    ("properties", "jsonb"),
    ("warnings", "jsonb"),
    # The open event model (ADR 0014).
    ("anonymous_id", "text"),
    ("derived", "jsonb"),
    ("source", "text"),
    ("original", "jsonb"),
    ("client_ip", "inet"),
)
EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in EVENT_COLUMNS)


def events_all() -> QuerySet[Event]:
    """Every stored event, to filter and aggregate; callers never save through it."""
    return Event.objects.all()


def rejected_events_all() -> QuerySet[RejectedEvent]:
    """Every quarantined event, to filter and aggregate; status changes go through services."""
    return RejectedEvent.objects.all()


# --- Added for the quality app (arch-quality) ------------------------------------------------

# The status of a rejected event still waiting in quarantine (filters and comparisons).
REJECTED_STATUS_QUARANTINED: str = RejectedEvent.Status.QUARANTINED
