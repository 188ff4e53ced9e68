"""Reads behind the evidence a check leaves: the value of a custom SQL check, and samples of
the rows that made a check fail (event ids, quarantine ids), kept with the failed run.

Samples are read only after a run failed, so passing runs cost nothing extra; each sample query
is bounded by `SAMPLE_LIMIT` and by the same window the check counted in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, Func, OuterRef, Q, QuerySet, TextField, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, NullIf

from events.facade import (
    EVENT_COLUMNS,
    REJECTED_STATUS_QUARANTINED,
    events_all,
    rejected_events_all,
)
from quality.engine.checks import SAMPLE_LIMIT, custom_sql_validate, is_property_path

# Text columns count "" as empty as well as NULL.
TEXT_COLUMNS = frozenset(name for name, sql_type in EVENT_COLUMNS if sql_type == "text")


def custom_sql_value(sql: str) -> object:
    """First column of the first row of a read-only query, or None when there is no row.

    PostgreSQL: `SET TRANSACTION READ ONLY` refuses any write (a data-modifying CTE included)
    and a local statement_timeout (QUALITY_CUSTOM_SQL_TIMEOUT_MS) cuts a slow query; both are
    undone with the transaction (or savepoint). SQLite (the demo) has neither: the query runs
    in a plain transaction under `PRAGMA query_only`, and the timeout does not apply.
    Errors propagate: the caller records the run as errored.
    """
    query = custom_sql_validate(sql)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                [str(int(settings.QUALITY_CUSTOM_SQL_TIMEOUT_MS))],
            )
            cursor.execute(query)
            row = cursor.fetchone()
            return row[0] if row else None
        cursor.execute("PRAGMA query_only = ON")
        try:
            cursor.execute(query)
            row = cursor.fetchone()
        finally:
            cursor.execute("PRAGMA query_only = OFF")
        return row[0] if row else None


def field_expression(field: str) -> F | Func:
    """The ORM expression for an event column or a `properties.<path>`: the path as plain text
    (a missing key and JSON null read as NULL). The Cast makes lookups plain text ones, not
    JSON-key ones, whose null and "" semantics differ between PostgreSQL and SQLite; Django
    reads a JSON null as the text 'null' on SQLite (the demo), folded back to NULL there."""
    if not is_property_path(field):
        return F(field)
    text = Cast(KT("__".join(field.split("."))), TextField())
    if connection.vendor == "sqlite":
        return NullIf(text, Value("null", output_field=TextField()))
    return text


def _window(start: dt.datetime, end: dt.datetime) -> QuerySet:
    return events_all().filter(timestamp__gte=start, timestamp__lt=end)


def _event_ids(rows: QuerySet) -> list[str]:
    return [str(value) for value in rows.values_list("event_id", flat=True)[:SAMPLE_LIMIT]]


def null_rows_sample(
    field: str, event_types: Sequence[str], start: dt.datetime, end: dt.datetime
) -> list[str]:
    """Event ids of events in the window whose field is null or empty."""
    rows = _window(start, end).annotate(value=field_expression(field))
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    empty = Q(value__isnull=True)
    if is_property_path(field) or field in TEXT_COLUMNS:
        empty |= Q(value="")
    return _event_ids(rows.filter(empty).order_by("timestamp", "id"))


def duplicate_rows_sample(start: dt.datetime, end: dt.datetime) -> list[str]:
    """Event ids of the repeats: every event but the first (lowest id) per content key."""
    keys = ("session_id", "event_type", "product_id", "timestamp")
    earlier = _window(start, end).filter(
        **{key: OuterRef(key) for key in keys}, id__lt=OuterRef("id")
    )
    rows = _window(start, end).filter(Exists(earlier))
    return _event_ids(rows.order_by("timestamp", "id"))


def orphan_purchases_sample(start: dt.datetime, end: dt.datetime) -> list[str]:
    """Event ids of purchases in the window whose session has no checkout_start."""
    checkout = events_all().filter(session_id=OuterRef("session_id"), event_type="checkout_start")
    rows = _window(start, end).filter(event_type="purchase").filter(~Exists(checkout))
    return _event_ids(rows.order_by("timestamp", "id"))


def quarantined_sample(start: dt.datetime, end: dt.datetime) -> list[int]:
    """Quarantine ids of events received in the window and still quarantined."""
    rows = rejected_events_all().filter(
        status=REJECTED_STATUS_QUARANTINED, received_at__gte=start, received_at__lt=end
    )
    return list(rows.order_by("received_at", "id").values_list("id", flat=True)[:SAMPLE_LIMIT])
