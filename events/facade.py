"""The events app's surface for the apps above it (quality, reports).

They never import `events.models` (an import-linter contract forbids it). What they need of the
raw tables comes from here: querysets to read (never to write: writes go through
`events.services`), and the SQL names of the tables and of their columns for set-based folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import CharField, QuerySet
from django.db.models.expressions import RawSQL

from events.models import Event, PersonLink, RejectedEvent
from events.original_selectors import ORIGINAL_REFERENCE_FIELDS, originals_in_dicts

EVENTS_TABLE: str = Event._meta.db_table
REJECTED_EVENTS_TABLE: str = RejectedEvent._meta.db_table
PERSON_LINKS_TABLE: str = PersonLink._meta.db_table

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
    ("original", "json"),  # kept whole, as text (ADR 0026)
    ("client_ip", "inet"),
)
EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in EVENT_COLUMNS)


def events_all() -> QuerySet[Event]:
    """Every stored event, to filter and aggregate; callers never save through it."""
    return Event.objects.all()


def events_values(qs: QuerySet[Event], fields: Sequence[str]) -> list[dict[str, Any]]:
    """`qs.values(*fields)` as a list, with `original` (when asked) resolved where its insert
    stored it once (ADR 0041; one query for the batches, not one per event)."""
    if "original" not in fields:
        return list(qs.values(*fields))
    return originals_in_dicts(list(qs.values(*fields, *ORIGINAL_REFERENCE_FIELDS)))


def rejected_events_all() -> QuerySet[RejectedEvent]:
    """Every quarantined event, to filter and aggregate; status changes go through services."""
    return RejectedEvent.objects.all()


# --- Added for the quality app (arch-quality) ------------------------------------------------

# The status of a rejected event still waiting in quarantine (filters and comparisons).
REJECTED_STATUS_QUARANTINED: str = RejectedEvent.Status.QUARANTINED


# --- People (ADR 0015) -------------------------------------------------------------------------


def identity_sql(table: str = EVENTS_TABLE) -> str:
    """SQL: an event's own id, its user id else its anonymous id (`table`: name or alias)."""
    return f"COALESCE(NULLIF({table}.user_id, ''), {table}.anonymous_id)"


def person_key_sql(table: str = EVENTS_TABLE) -> str:
    """SQL: the person an event counts as, the id its own id is linked to, else its own id.

    One index probe per event (links are unique by `linked_id` and always point at a canonical
    id), so it can stand in for `user_id` wherever distinct users are counted."""
    identity = identity_sql(table)
    return (
        f"COALESCE((SELECT l.user_id FROM {PERSON_LINKS_TABLE} l "  # noqa: S608
        f"WHERE l.linked_id = {identity}), {identity})"
    )


def person_ids_sql(keys_sql: str) -> str:
    """SQL set: every id counted as one of the people `keys_sql` (a subquery) selects."""
    links = f"SELECT linked_id FROM {PERSON_LINKS_TABLE}"  # noqa: S608
    return f"{keys_sql} UNION {links} WHERE user_id IN ({keys_sql})"


def identity_in_sql(ids_sql: str) -> str:
    """SQL condition on the events table: its own id is in `ids_sql` (a subquery or a list of
    placeholders, used twice). Written so that the user id and anonymous id indexes serve."""
    return f"(user_id IN ({ids_sql}) OR (user_id = '' AND anonymous_id IN ({ids_sql})))"


def events_with_person(qs: QuerySet[Event]) -> QuerySet[Event]:
    """`qs` annotated with `person` (see `person_key_sql`), to count distinct people."""
    # The SQL is built from table names only; no value is interpolated.
    return qs.annotate(person=RawSQL(person_key_sql(), [], output_field=CharField()))  # noqa: S611
