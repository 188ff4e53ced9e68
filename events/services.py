"""Writes for events: ingestion (validate, dedupe, store), quarantine, and ingestion keys.

Ingestion is set-based: one validation pass, one insert statement for the accepted events
(`ON CONFLICT (event_id) DO NOTHING RETURNING`), one bulk insert for the rejected ones. No
per-row INSERT and no per-row uniqueness query, so a batch of 500 costs a few milliseconds.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from events.models import Event, IngestionKey, RejectedEvent
from events.schema import FieldError, text_safe
from quality.services.rules import validation_stats_record
from quality.validators import EventValidator

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class IngestSource:
    """Where events came from, kept on rejected events for follow-up."""

    key_id: int | None = None
    ip: str | None = None


@dataclass(slots=True)
class EventOutcome:
    index: int
    status: str
    event_id: str | None = None
    id: int | None = None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    rejected_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id is not None:
            data["event_id"] = self.event_id
        if self.id is not None:
            data["id"] = self.id
        if self.errors:
            data["errors"] = [error.as_dict() for error in self.errors]
        if self.warnings:
            data["warnings"] = [warning.as_dict() for warning in self.warnings]
        if self.rejected_id is not None:
            data["rejected_id"] = self.rejected_id
        return data


_EVENT_COLUMNS = (
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
)


_COLUMN_DEFAULTS = {
    **{
        name: "''"
        for name in (
            "page_url",
            "referrer",
            "product_id",
            "category",
            "currency",
            "order_id",
            "search_query",
        )
    },
    "properties": "'{}'::jsonb",
    "warnings": "'[]'::jsonb",
}


def _recordset_insert_sql() -> str:
    """INSERT … SELECT FROM json_to_recordset(one JSON parameter) … ON CONFLICT DO NOTHING.

    One parameter for the whole batch: orjson writes it in C, and PostgreSQL parses it in C.
    Binding one array per column instead cost more in Python than everything else together.
    What a row leaves out costs PostgreSQL no parsing: a missing key takes the column default,
    a missing client_timestamp is the timestamp, and a missing received_at is the batch's.
    """
    names = ", ".join(f'"{name}"' for name, _ in _EVENT_COLUMNS)
    definitions = ", ".join(f'"{name}" {kind}' for name, kind in _EVENT_COLUMNS)
    values = []
    for name, _ in _EVENT_COLUMNS:
        if name == "received_at":
            values.append('COALESCE("received_at", %(received_at)s::timestamptz)')
        elif name == "client_timestamp":
            values.append('COALESCE("client_timestamp", "timestamp")')
        elif name in _COLUMN_DEFAULTS:
            values.append(f'COALESCE("{name}", {_COLUMN_DEFAULTS[name]})')
        else:
            values.append(f'"{name}"')
    # Identifiers come from the model; the values are bound parameters.
    table = Event._meta.db_table
    return (
        f"INSERT INTO {table} ({names}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM json_to_recordset(%(rows)s::json) AS t({definitions}) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id::text, id"
    )


_RECORDSET_INSERT_SQL = _recordset_insert_sql()


_NO_WARNINGS: tuple = ()  # shared by rows without warnings; stored as []


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _rows_document(rows: list[dict[str, Any]], received_at: Any) -> str:
    """The rows as one JSON array, without the values the statement fills in itself.

    The rows are consumed: keys equal to what the statement would use anyway are dropped."""
    for row in rows:
        if row.get("received_at") == received_at:
            del row["received_at"]
        if "client_timestamp" in row and row["client_timestamp"] == row.get("timestamp"):
            del row["client_timestamp"]
        if not row.get("properties", True):
            del row["properties"]
        if not row.get("warnings", True):
            del row["warnings"]
    return orjson.dumps(rows, default=_json_default).decode()


# The prepared insert's cursor, kept per thread with the connection it belongs to (Django's
# connections are per thread too): creating a psycopg cursor per event cost more than the rest
# of psycopg's client-side work for it.
_insert_cursors = threading.local()


def _prepared_insert_cursor(raw: psycopg.Connection) -> psycopg.Cursor:
    kept = getattr(_insert_cursors, "kept", None)
    if kept is not None and kept[0] is raw and not kept[1].closed:
        return kept[1]
    cursor = psycopg.Cursor(raw)
    _insert_cursors.kept = (raw, cursor)
    return cursor


def _recordset_insert(db: BaseDatabaseWrapper, params: dict[str, Any]) -> dict[str, int]:
    """Run the insert on a server-side-binding cursor (the document travels as a parameter).

    Outside a transaction the statement is a server-side prepared statement of this
    connection: parsing, analysing and planning it was about 40 % of PostgreSQL's CPU for a
    single event. Django turns psycopg's automatic preparation off (prepare_threshold None,
    for connection poolers), so it is switched on around this one statement only. Inside a
    transaction it is not prepared: a rollback there would drop the statement on the server
    while psycopg still believed it prepared. INGEST_PREPARED_STATEMENTS=false turns it off
    (a transaction-pooling PgBouncer older than 1.21 cannot keep prepared statements).
    """
    raw = db.connection
    if db.in_atomic_block or not settings.INGEST_PREPARED_STATEMENTS:
        with psycopg.Cursor(raw) as cursor:
            cursor.execute(_RECORDSET_INSERT_SQL, params)
            return dict(cursor.fetchall())
    cursor = _prepared_insert_cursor(raw)
    threshold = raw.prepare_threshold
    raw.prepare_threshold = 0
    try:
        cursor.execute(_RECORDSET_INSERT_SQL, params, prepare=True)
    finally:
        raw.prepare_threshold = threshold
    return dict(cursor.fetchall())


def _insert_rows_postgres(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert in one statement; return {event_id: id} for the rows that were new.

    A persistent connection that died since its last use (database restart) is replaced once:
    the statement is idempotent (ON CONFLICT DO NOTHING), so running it again is safe.
    """
    received_at = rows[0].get("received_at") or timezone.now()
    params = {"rows": _rows_document(rows, received_at), "received_at": received_at}
    db = connections[DEFAULT_DB_ALIAS]  # once: each `connection.x` looks the alias up again
    for attempt in (1, 2):
        db.ensure_connection()
        try:
            with db.wrap_database_errors:
                return _recordset_insert(db, params)
        except (OperationalError, InterfaceError):
            if attempt == 2 or db.in_atomic_block:
                raise
            db.close()
    raise AssertionError("unreachable")


def _insert_rows_portable(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Fallback for SQLite: one existence query, one bulk insert."""
    ids = [row["event_id"] for row in rows]
    existing = set(Event.objects.filter(event_id__in=ids).values_list("event_id", flat=True))
    new_rows = [row for row in rows if row["event_id"] not in existing]
    fields = {name for name, _ in _EVENT_COLUMNS}
    Event.objects.bulk_create(
        [Event(**{k: v for k, v in row.items() if k in fields}) for row in new_rows],
        batch_size=500,
    )
    inserted = Event.objects.filter(event_id__in=[row["event_id"] for row in new_rows])
    return {str(event_id): pk for event_id, pk in inserted.values_list("event_id", "id")}


def events_insert(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Store validated rows, skipping event_ids already stored. Returns ids of new rows."""
    if not rows:
        return {}
    if settings.IS_POSTGRES:
        return _insert_rows_postgres(rows)
    return _insert_rows_portable(rows)


_MAX_RAW_DEPTH = 32


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-encodable copy of a payload orjson refused (lone surrogates, integers beyond 64
    bits, nesting past its limit); recursion is cut at a fixed depth."""
    if depth > _MAX_RAW_DEPTH:
        return "…(nested too deep)"
    if isinstance(value, dict):
        return {text_safe(key, 1000): _json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item, depth + 1) for item in value]
    if isinstance(value, str):
        return text_safe(value, len(value))
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def raw_payload_encode(payload: Any) -> tuple[str, bool]:
    """JSON text of a payload (or the raw body), cut to the configured bound in bytes.

    NUL bytes become `\\u0000` escapes and lone surrogates backslash escapes, which any
    database stores; the bound keeps a flood of huge bad events from filling the disk.
    """
    limit = settings.INGEST_REJECTED_PAYLOAD_MAX_BYTES
    if isinstance(payload, bytes):  # a raw request body that was not (acceptable) JSON
        encoded = payload[: limit + 4].decode("utf-8", "backslashreplace").encode()
    else:
        try:
            encoded = orjson.dumps(payload, default=_json_default)
        except (TypeError, orjson.JSONEncodeError):
            encoded = orjson.dumps(_json_safe(payload), default=str)
    encoded = encoded.replace(b"\x00", b"\\u0000")
    if len(encoded) > limit:
        return encoded[:limit].decode("utf-8", "ignore"), True
    return encoded.decode(), False


def _text_field(payload: Any, name: str, limit: int) -> str:
    if not isinstance(payload, dict):
        return ""
    value = payload.get(name)
    if not isinstance(value, str):
        return ""
    return text_safe(value, limit - 1)[:limit]


def rejected_events_store(
    items: Sequence[tuple[Any, list[FieldError]]],
    *,
    source: IngestSource,
    received_at: dt.datetime,
) -> list[int]:
    """Keep refused payloads with their reasons. Returns the new rows' ids in order."""
    if not items:
        return []
    rejected = []
    for payload, errors in items:
        raw_text, truncated = raw_payload_encode(payload)
        rejected.append(
            RejectedEvent(
                event_id=_text_field(payload, "event_id", 64),
                event_type=_text_field(payload, "event_type", 64),
                raw_payload=raw_text,
                raw_truncated=truncated,
                reasons=[error.as_dict() for error in errors],
                rule_ids=sorted({e.rule_id for e in errors if e.rule_id is not None}),
                source_key_id=source.key_id,
                source_ip=source.ip,
                received_at=received_at,
            )
        )
    created = RejectedEvent.objects.bulk_create(rejected)
    if created and created[0].pk is None:  # backends without RETURNING
        newest = RejectedEvent.objects.order_by("-pk").values_list("pk", flat=True)[: len(created)]
        return sorted(newest)
    return [row.pk for row in created]


def event_batch_ingest(
    payloads: Sequence[Any],
    *,
    source: IngestSource,
    received_at: dt.datetime | None = None,
    validator: EventValidator | None = None,
    sizes_checked: bool = False,
) -> list[EventOutcome]:
    """Validate, dedupe and store a batch; return one outcome per payload, in order.

    Valid events are stored even when others are bad. An event_id seen twice in the batch or
    already stored is reported as a duplicate and stored once. `sizes_checked` says that the
    caller already bounded each event to INGEST_MAX_EVENT_BYTES (a single-event request body).
    """
    received_at = received_at or timezone.now()
    validator = validator or EventValidator()
    outcomes: list[EventOutcome] = []
    pending: list[EventOutcome] = []
    rows_to_insert: list[dict[str, Any]] = []
    rejected_items: list[tuple[Any, list[FieldError]]] = []
    rejected_outcomes: list[EventOutcome] = []

    if sizes_checked:
        sized = list(enumerate(payloads))
    else:
        sized = []
        max_event_bytes = settings.INGEST_MAX_EVENT_BYTES
        for index, payload in enumerate(payloads):
            size_error = _oversize_error(payload, max_event_bytes)
            if size_error is None:
                sized.append((index, payload))
                continue
            outcome = EventOutcome(index, REJECTED, errors=[size_error])
            outcome.event_id = _text_field(payload, "event_id", 64) or None
            outcomes.append(outcome)
            rejected_items.append((payload, [size_error]))
            rejected_outcomes.append(outcome)

    results = validator.validate_batch([payload for _, payload in sized], received_at=received_at)
    seen_ids: set[str] = set()
    for (index, payload), result in zip(sized, results, strict=True):
        if result.errors:
            outcome = EventOutcome(
                index,
                REJECTED,
                event_id=_text_field(payload, "event_id", 64) or None,
                errors=result.errors,
                warnings=result.warnings,
            )
            rejected_items.append((payload, result.errors + result.warnings))
            rejected_outcomes.append(outcome)
            outcomes.append(outcome)
            continue
        row = result.row
        event_id = str(row["event_id"])
        if event_id in seen_ids:
            outcomes.append(EventOutcome(index, DUPLICATE, event_id=event_id))
            continue
        seen_ids.add(event_id)
        warnings = result.warnings
        row["warnings"] = [warning.as_dict() for warning in warnings] if warnings else _NO_WARNINGS
        outcome = EventOutcome(index, ACCEPTED, event_id=event_id, warnings=warnings)
        rows_to_insert.append(row)
        pending.append(outcome)
        outcomes.append(outcome)

    if rejected_items:
        with transaction.atomic():
            inserted = events_insert(rows_to_insert)
            rejected_ids = rejected_events_store(
                rejected_items, source=source, received_at=received_at
            )
        for outcome, rejected_id in zip(rejected_outcomes, rejected_ids, strict=True):
            outcome.rejected_id = rejected_id
    else:
        # One statement commits on its own: no BEGIN/COMMIT round trips.
        inserted = events_insert(rows_to_insert)
    validation_stats_record(results, received_at=received_at)  # quality counters (issue 3)
    for outcome in pending:
        new_id = inserted.get(outcome.event_id)
        if new_id is None:
            outcome.status = DUPLICATE
            outcome.warnings = []
        else:
            outcome.id = new_id
    if rejected_outcomes and not sizes_checked:
        outcomes.sort(key=lambda outcome: outcome.index)
    return outcomes


def _oversize_error(payload: Any, max_bytes: int) -> FieldError | None:
    try:
        size = len(orjson.dumps(payload))
    except (TypeError, orjson.JSONEncodeError):
        return None  # not plain JSON data (e.g. lone surrogates): the schema layer explains
    if size > max_bytes:
        return FieldError("event", "max_size", f"must be at most {max_bytes} bytes of JSON")
    return None


def event_ingest(payload: Any, *, source: IngestSource) -> EventOutcome:
    """Ingest one event (its request body was already bounded to INGEST_MAX_EVENT_BYTES).
    A duplicate reports the id of the event already stored."""
    outcome = event_batch_ingest([payload], source=source, sizes_checked=True)[0]
    if outcome.status == DUPLICATE and outcome.event_id:
        outcome.id = (
            Event.objects.filter(event_id=outcome.event_id).values_list("id", flat=True).first()
        )
    return outcome


def request_rejected_store(body: bytes | Any, error: FieldError, *, source: IngestSource) -> int:
    """Keep a request refused as a whole (not JSON, not the documented shape, too many events,
    too large), bounded, so that the sender's mistake can be seen and nothing is silently lost."""
    return rejected_events_store([(body, [error])], source=source, received_at=timezone.now())[0]


def malformed_body_store(body: bytes, reason: str, *, source: IngestSource) -> int:
    """Keep a request body that was not even JSON, so the sender's mistake can be seen."""
    return request_rejected_store(body, FieldError("body", "json", reason), source=source)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: IngestionKey
    raw_key: str


def ingestion_key_create(*, name: str, can_read: bool = True, is_active: bool = True) -> CreatedKey:
    """Create a key; the raw value exists only in the return value (store only its hash)."""
    raw_key = f"ek_{secrets.token_urlsafe(32)}"
    key = IngestionKey.objects.create(
        name=name,
        prefix=raw_key[:10],
        key_hash=IngestionKey.hash_key(raw_key),
        can_read=can_read,
        is_active=is_active,
    )
    return CreatedKey(key=key, raw_key=raw_key)
