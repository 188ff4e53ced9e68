"""Stored-event lookups for batch rules (sessions and values seen before) and for trying a
rule on a sample of recent events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from events.facade import EVENT_COLUMN_NAMES, events_all, events_values

# A validated row as the rule engine sees it: every stored column but the warnings it produced.
_SAMPLE_FIELDS = [name for name in EVENT_COLUMN_NAMES if name != "warnings"]


class StoredEventFacts:
    """`quality.engine.rules.StoredFacts` over the events table: one query per call."""

    def sessions_existing(self, session_ids: set[str], since: dt.datetime) -> set[str]:
        if not session_ids:
            return set()
        rows = events_all().filter(session_id__in=session_ids, timestamp__gte=since)
        return set(rows.values_list("session_id", flat=True).distinct().order_by())

    def values_on_days(
        self,
        field: str,
        values: set[str],
        event_types: frozenset[str],
        start: dt.datetime,
        end: dt.datetime,
    ) -> set[tuple[str, dt.date, str]]:
        if not values:
            return set()
        rows = events_all().filter(
            **{f"{field}__in": values}, timestamp__gte=start, timestamp__lt=end
        )
        if event_types:
            rows = rows.filter(event_type__in=event_types)
        return {
            (value, timestamp.astimezone(dt.UTC).date(), str(event_id))
            for value, timestamp, event_id in rows.values_list(field, "timestamp", "event_id")
        }


def events_of_sessions(
    session_ids: set[str], since: dt.datetime
) -> list[tuple[str, dt.datetime, str]]:
    """(session_id, timestamp, event_id) of stored events of these sessions since a time."""
    rows = events_all().filter(session_id__in=session_ids, timestamp__gte=since)
    return [
        (s, ts, str(eid)) for s, ts, eid in rows.values_list("session_id", "timestamp", "event_id")
    ]


def events_with_values(
    field: str, values: set[str], event_types: frozenset[str], since: dt.datetime
) -> list[tuple[str, dt.datetime, str]]:
    """(value, timestamp, event_id) of stored events (of these types) with one of the values."""
    rows = events_all().filter(**{f"{field}__in": values}, timestamp__gte=since)
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    return [(v, ts, str(eid)) for v, ts, eid in rows.values_list(field, "timestamp", "event_id")]


def events_sample(limit: int) -> list[dict[str, Any]]:
    """The newest `limit` stored events as validated-row dicts (for trying a rule)."""
    return events_values(events_all().order_by("-received_at", "-id")[:limit], _SAMPLE_FIELDS)
