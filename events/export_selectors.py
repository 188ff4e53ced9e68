"""Raw rows out: filtered events and quarantine rows, by keyset pages and batches.

Order is (order_field, id) ascending, order_field being `received_at` (default) or `timestamp`.
The pair is unique, so a position in it (`KeysetPosition`) names one place: a page or batch
takes the rows strictly after it, and no row is returned twice however many rows arrive
meanwhile. Every row stored before the first page is returned exactly once; a row inserted
while paging is returned at most once (once if it sorts after the position already reached:
in receive order that is nearly every new row, in event time only events not older than it).

Batches are one bounded keyset query each (an index range scan on order_field), never an
OFFSET and never the whole result in memory, so an export of any size runs in fixed memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from events.facade import EVENT_COLUMN_NAMES
from events.models import Event, RejectedEvent
from events.original_selectors import (
    ORIGINAL_REFERENCE_FIELDS,
    originals_in_dicts,
    originals_in_tuples,
)

ORDER_FIELDS: tuple[str, ...] = ("received_at", "timestamp")
EXPORT_BATCH_ROWS = 2_000  # ~10 KB of Python objects per row in flight: ~20 MB a batch

# What an export holds per event: the row id (the keyset tiebreak) and every stored column.
EVENT_EXPORT_COLUMNS: tuple[str, ...] = ("id", *EVENT_COLUMN_NAMES)
# Per quarantined event: why it was refused (reasons, rule_ids) next to what was sent.
REJECTED_EXPORT_COLUMNS: tuple[str, ...] = (
    "id",
    "received_at",
    "status",
    "event_id",
    "event_type",
    "reasons",
    "rule_ids",
    "raw_payload",
    "raw_truncated",
    "source_key_id",
    "source_ip",
    "replay_count",
    "replayed_at",
)


@dataclass(frozen=True)
class EventFilters:
    """Filters of the raw-event reads: half-open time ranges [since, until) on event time
    and on receipt time, and equality on the other fields. None means "any"."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    received_since: dt.datetime | None = None
    received_until: dt.datetime | None = None
    event_type: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    country: str | None = None
    device_type: str | None = None


@dataclass(frozen=True)
class RejectedFilters:
    """Filters of the quarantine export: receipt time [since, until), status, event type."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    status: str | None = None
    event_type: str | None = None


@dataclass(frozen=True)
class KeysetPosition:
    """A place in (order_field, id) order: the next rows are those strictly after it."""

    value: dt.datetime
    pk: int


_EVENT_LOOKUPS = {
    "since": "timestamp__gte",
    "until": "timestamp__lt",
    "received_since": "received_at__gte",
    "received_until": "received_at__lt",
    "event_type": "event_type",
    "user_id": "user_id",
    "session_id": "session_id",
    "country": "country",
    "device_type": "device_type",
}


def _lookups(filters: Any, names: dict[str, str]) -> dict[str, Any]:
    return {
        lookup: getattr(filters, name)
        for name, lookup in names.items()
        if getattr(filters, name) is not None
    }


def events_filtered(filters: EventFilters) -> QuerySet[Event]:
    """The stored events that pass `filters`, unordered."""
    return Event.objects.filter(**_lookups(filters, _EVENT_LOOKUPS))


def rejected_events_filtered(filters: RejectedFilters) -> QuerySet[RejectedEvent]:
    """The quarantine rows that pass `filters`, unordered."""
    names = {
        "since": "received_at__gte",
        "until": "received_at__lt",
        "status": "status",
        "event_type": "event_type",
    }
    return RejectedEvent.objects.filter(**_lookups(filters, names))


def _after(order_field: str, position: KeysetPosition | None) -> Q:
    if position is None:
        return Q()
    # The leading range condition keeps the scan on the order_field index (an OR alone
    # makes PostgreSQL scan the table).
    return Q(**{f"{order_field}__gte": position.value}) & (
        Q(**{f"{order_field}__gt": position.value})
        | Q(**{order_field: position.value, "id__gt": position.pk})
    )


def keyset_batch(
    queryset: QuerySet,
    columns: tuple[str, ...],
    *,
    order_field: str,
    after: KeysetPosition | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """Up to `limit` rows of `queryset` after `after`, as tuples of `columns` (which hold
    order_field and id), in (order_field, id) order."""
    if order_field not in ORDER_FIELDS:
        raise ValueError(f"order_field must be one of {ORDER_FIELDS}")
    rows = queryset.filter(_after(order_field, after)).order_by(order_field, "id")
    if queryset.model is Event and "original" in columns:
        fetched = rows.values_list(*columns, *ORIGINAL_REFERENCE_FIELDS)[:limit]
        return originals_in_tuples(list(fetched), columns.index("original"))
    return list(rows.values_list(*columns)[:limit])


def keyset_batches(
    queryset: QuerySet,
    columns: tuple[str, ...],
    *,
    order_field: str = "received_at",
    batch_rows: int = EXPORT_BATCH_ROWS,
) -> Iterator[list[tuple[Any, ...]]]:
    """Every row of `queryset` in batches of at most `batch_rows` (bounded memory at any
    size), each batch one keyset query after the last row of the one before."""
    value_at, id_at = columns.index(order_field), columns.index("id")
    after: KeysetPosition | None = None
    while True:
        batch = keyset_batch(
            queryset, columns, order_field=order_field, after=after, limit=batch_rows
        )
        if not batch:
            return
        yield batch
        if len(batch) < batch_rows:
            return
        last = batch[-1]
        after = KeysetPosition(last[value_at], last[id_at])


def event_row_shape(row: dict[str, Any]) -> dict[str, Any]:
    """One event as the JSON API answers it: ISO times, string ids, decimal numbers as
    JSON numbers (the /events/recent contract)."""
    row["event_id"] = str(row["event_id"])
    for key in ("timestamp", "received_at", "client_timestamp"):
        if row.get(key) is not None:
            row[key] = row[key].isoformat()
    for key in ("price", "revenue"):
        if row[key] is not None:
            row[key] = float(row[key])
    return row


def events_page(
    filters: EventFilters,
    fields: tuple[str, ...],
    *,
    order_field: str,
    after: KeysetPosition | None,
    limit: int,
) -> tuple[list[dict[str, Any]], KeysetPosition | None]:
    """One page of filtered events after `after`, and the position to continue from (None
    when no further row exists now)."""
    columns = tuple(dict.fromkeys((*fields, order_field, "id")))
    rows = keyset_batch(
        events_filtered(filters), columns, order_field=order_field, after=after, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    following = None
    if more:
        last = dict(zip(columns, rows[-1], strict=True))
        following = KeysetPosition(last[order_field], last["id"])
    events = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        events.append(event_row_shape({name: values[name] for name in fields}))
    return events, following


def events_recent_filtered(
    filters: EventFilters,
    fields: tuple[str, ...],
    *,
    limit: int,
    offset: int = 0,
    order_field: str = "received_at",
) -> list[dict[str, Any]]:
    """Filtered events newest first by receipt (default) or event time (ties: newest row
    first). By receipt, an event just sent is on top whatever its own timestamp."""
    if order_field not in ORDER_FIELDS:
        raise ValueError(f"order_field must be one of {ORDER_FIELDS}")
    rows = events_filtered(filters).order_by(f"-{order_field}", "-id")
    if "original" in fields:
        page = originals_in_dicts(
            list(rows.values(*fields, *ORIGINAL_REFERENCE_FIELDS)[offset : offset + limit])
        )
    else:
        page = list(rows.values(*fields)[offset : offset + limit])
    return [event_row_shape(row) for row in page]
