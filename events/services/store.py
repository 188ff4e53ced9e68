"""Storing accepted events: one set-based insert per batch, idempotent by event_id.

`events_insert` is the one way events enter the table (ingestion, replay, the portable path
of the sample data). Events stored with a received_at in the past (a replay from quarantine)
may sit behind the receive-order watermarks of the rollups built on this table: the apps that
keep such rollups register a listener here, and whoever stores such events announces them
with `events_stored_behind_notify`, inside the storing transaction.
"""

from __future__ import annotations

import operator
import threading
import uuid
from collections.abc import Callable, Sequence
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

from analytics_site.sql import is_postgres
from events.facade import EVENT_COLUMN_NAMES, EVENT_COLUMNS, EVENTS_TABLE
from events.models import Event, EventKey, OriginalBatch
from events.partitioning.convert import KEYS_CLAIMED_SETTING
from events.services.sessions import sessions_assign

KEYS_TABLE = EventKey._meta.db_table
ORIGINAL_BATCHES_TABLE = OriginalBatch._meta.db_table
_COLUMN_DEFAULTS = {
    **{
        name: "''"
        for name in (
            "user_id",
            "anonymous_id",
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
    "derived": "'[]'::jsonb",
    "source": "'api'",
}


def _recordset_insert_sql(*, originals: bool = False, batched: bool = False) -> str:
    """INSERT … SELECT FROM json_to_recordset(one JSON parameter) … RETURNING the new rows.

    One parameter for the whole batch: orjson writes it in C, and PostgreSQL parses it in C.
    Binding one array per column instead cost more in Python than everything else together.
    What a row leaves out costs PostgreSQL no parsing: a missing key takes the column default,
    a missing client_timestamp is the timestamp, and a missing received_at is the batch's.
    An event_id already stored is skipped by the events table's key trigger (ADR 0021: the
    table is partitioned, so no unique index on event_id alone can serve ON CONFLICT), and
    left out of RETURNING.

    `originals`: the rows' original messages (translated events, ADR 0026) come as a second
    parameter zipped with the document's rows (ADR 0033): inside the document
    json_to_recordset walked every token of each message before the json column checked it.
    That parameter is one text, the messages' compact JSON joined by newlines (ADR 0038): a
    compact JSON text never holds a raw newline, and an empty line is a row without one. A
    text[] cost psycopg's Python array dumper per message.

    `batched` (ADR 0041): that text is stored once, as one OriginalBatch row that the same
    statement inserts (only when some event is new), and each event points at its line (the
    row's position in the document) instead: no json check and no copy per row.
    """
    names = ", ".join(
        f'"{name}"' for name in EVENT_COLUMN_NAMES if not batched or name != "original"
    )
    definitions = ", ".join(f'"{name}" {kind}' for name, kind in EVENT_COLUMNS)
    rows = f"SELECT * FROM json_to_recordset(%(rows)s::json) AS t({definitions})"  # noqa: S608
    if originals:
        others = [(name, kind) for name, kind in EVENT_COLUMNS if name != "original"]
        columns = ", ".join(f'"{name}"' for name, _ in others)
        typed = ", ".join(f'"{name}" {kind}' for name, kind in others)
        rows = (
            f"SELECT {columns}, NULLIF(o, '')::json AS \"original\" FROM ROWS FROM ("  # noqa: S608
            f"json_to_recordset(%(rows)s::json) AS ({typed}), "
            f"unnest(string_to_array(%(originals)s::text, E'\\n'))) AS z({columns}, o)"
        )
    if batched:
        rows = (
            f"SELECT * FROM ROWS FROM (json_to_recordset(%(rows)s::json) AS ({typed})) "  # noqa: S608
            f"WITH ORDINALITY AS z({columns}, original_line)"
        )
    values = []
    for name in EVENT_COLUMN_NAMES:
        if batched and name == "original":
            continue
        if name == "received_at":
            values.append('COALESCE("received_at", %(received_at)s::timestamptz)')
        elif name == "client_timestamp":
            values.append('COALESCE("client_timestamp", "timestamp")')
        elif name in _COLUMN_DEFAULTS:
            values.append(f'COALESCE("{name}", {_COLUMN_DEFAULTS[name]})')
        else:
            values.append(f'"{name}"')
    # Identifiers come from the model; the values are bound parameters. The keys are claimed
    # set-based first (ADR 0027); a row whose key was already there is left out of the insert.
    # `flag` turns the per-row key trigger off for this statement: it is read (joined) before
    # `claimed` yields a row, so before any event row can reach the trigger.
    batch = ""
    if batched:
        batch = (
            f", b AS (INSERT INTO {ORIGINAL_BATCHES_TABLE} (received_at, messages) "  # noqa: S608
            "SELECT %(received_at)s::timestamptz, %(originals)s::text "
            "WHERE EXISTS (SELECT 1 FROM claimed) RETURNING id)"
        )
        names += ', "original_batch_id", "original_line"'
        values += ["(SELECT id FROM b)", "t.original_line::integer"]
    return (
        f"WITH flag AS MATERIALIZED (SELECT set_config('{KEYS_CLAIMED_SETTING}', 'on', true)), "  # noqa: S608
        f"t AS MATERIALIZED ({rows}), "
        f"claimed AS (INSERT INTO {KEYS_TABLE} (event_id, received_at) "
        "SELECT t.event_id, COALESCE(t.received_at, %(received_at)s::timestamptz) FROM t, flag "
        f"ON CONFLICT (event_id) DO NOTHING RETURNING event_id){batch} "
        f"INSERT INTO {EVENTS_TABLE} ({names}) "
        f"SELECT {', '.join(values)} FROM t WHERE t.event_id IN (SELECT event_id FROM claimed) "
        "RETURNING event_id::text, id"
    )


_UNCLAIMED_RESET_SQL = f"SELECT set_config('{KEYS_CLAIMED_SETTING}', '', true)"


_RECORDSET_INSERT_SQL = _recordset_insert_sql()
_RECORDSET_INSERT_ORIGINALS_SQL = _recordset_insert_sql(originals=True)
_RECORDSET_INSERT_BATCHED_SQL = _recordset_insert_sql(originals=True, batched=True)
_HAS_ORIGINAL = operator.methodcaller("__contains__", "original")
_ORIGINAL_TAKEN = operator.methodcaller("pop", "original", None)


def _originals_taken(rows: list[dict[str, Any]]) -> str | None:
    """The rows' original messages as one text, each message's compact JSON on its own line
    (an empty line for a row without one), taken out of the rows for the statement's second
    parameter; None when no row has one (our own API's)."""
    if not any(map(_HAS_ORIGINAL, rows)):  # in C: this runs for every batch
        return None
    originals = list(map(_ORIGINAL_TAKEN, rows))
    if set(map(type, originals)) == _ONLY_BYTES:  # ingestion's: JSON already written, in C
        return b"\n".join(originals).decode()
    return "\n".join(map(_original_text, originals))


_ONLY_BYTES = {bytes}


def _original_text(original: Any) -> str:
    """A row's original as compact JSON text ("" for none): ingestion hands over bytes
    (original_storable), a replay the message. orjson escapes every newline in a string."""
    if original is None:
        return ""
    if type(original) is bytes:
        return original.decode()
    return orjson.dumps(original, default=json_default).decode()


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _rows_document(rows: list[dict[str, Any]], received_at: Any) -> tuple[str, bool]:
    """The rows as one JSON array, without the values the statement fills in itself, and
    whether some row keeps a received_at of its own (a replay's).

    The rows are consumed: keys equal to what the statement would use anyway are dropped."""
    own_times = False
    for row in rows:
        at = row.get("received_at")
        if at is not None:
            if at == received_at:
                del row["received_at"]
            else:
                own_times = True
        if "client_timestamp" in row and row["client_timestamp"] == row.get("timestamp"):
            del row["client_timestamp"]
        if not row.get("properties", True):
            del row["properties"]
        if not row.get("warnings", True):
            del row["warnings"]
        if not row.get("derived", True):
            del row["derived"]
    return orjson.dumps(rows, default=json_default).decode(), own_times


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


def _recordset_insert(
    db: BaseDatabaseWrapper, statement: str, params: dict[str, Any]
) -> dict[str, int]:
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
            cursor.execute(statement, params)
            inserted = dict(cursor.fetchall())
            if db.in_atomic_block:  # later inserts of this transaction claim their keys again
                cursor.execute(_UNCLAIMED_RESET_SQL)
            return inserted
    cursor = _prepared_insert_cursor(raw)
    threshold = raw.prepare_threshold
    raw.prepare_threshold = 0
    try:
        cursor.execute(statement, params, prepare=True)
    finally:
        raw.prepare_threshold = threshold
    return dict(cursor.fetchall())


def _first_of_each_event_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without repeats of an event_id (the first kept, as the key trigger would):
    the statement claims keys set-based, so two rows of one id would both find theirs."""
    ids = [row["event_id"] for row in rows]
    # Compared by their 128-bit numbers: a set of UUIDs calls UUID.__hash__, Python code.
    if set(map(type, ids)) == {uuid.UUID} and len({value.int for value in ids}) == len(ids):
        return rows  # ingestion's rows: UUIDs, repeats already reported as duplicates
    seen: set[uuid.UUID] = set()
    kept = []
    for row in rows:
        value = row["event_id"]
        key = value if type(value) is uuid.UUID else uuid.UUID(str(value))
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def _insert_rows_postgres(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert in one statement; return {event_id: id} for the rows that were new.

    A persistent connection that died since its last use (database restart) is replaced once:
    the statement is idempotent (stored event_ids are skipped), so running it again is safe.
    """
    received_at = rows[0].get("received_at") or timezone.now()
    rows = _first_of_each_event_id(rows)
    originals = _originals_taken(rows)
    document, own_times = _rows_document(rows, received_at)
    params = {"rows": document, "received_at": received_at}
    statement = _RECORDSET_INSERT_SQL
    if originals is not None:
        params["originals"] = originals
        statement = _RECORDSET_INSERT_ORIGINALS_SQL
        # Once per insert only when every row has the batch's received_at (left out of the
        # document): retention finds a batch's events by it (ADR 0041). A replay's rows keep
        # their own times, and their originals in the column.
        if settings.INGEST_ORIGINALS_ONCE and not own_times:
            statement = _RECORDSET_INSERT_BATCHED_SQL
    db = connections[DEFAULT_DB_ALIAS]  # once: each `connection.x` looks the alias up again
    for attempt in (1, 2):
        db.ensure_connection()
        try:
            with db.wrap_database_errors:
                return _recordset_insert(db, statement, params)
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
    fields = set(EVENT_COLUMN_NAMES)
    Event.objects.bulk_create(
        [Event(**{k: v for k, v in row.items() if k in fields}) for row in new_rows],
        batch_size=500,
    )
    inserted = Event.objects.filter(event_id__in=[row["event_id"] for row in new_rows])
    return {str(event_id): pk for event_id, pk in inserted.values_list("event_id", "id")}


def events_insert(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Store validated rows, skipping event_ids already stored. Returns ids of new rows.

    Rows without a session_id get one first (`sessions_assign`), in the same transaction."""
    if not rows:
        return {}
    if not all(row.get("session_id") for row in rows):
        with transaction.atomic(savepoint=False):
            sessions_assign(rows)
            return _events_insert(rows)
    return _events_insert(rows)


def _events_insert(rows: list[dict[str, Any]]) -> dict[str, int]:
    if is_postgres():
        return _insert_rows_postgres(rows)
    return _insert_rows_portable(rows)


# Called with the pks of events stored behind the rollups' watermarks, in the storing
# transaction; registered once at start-up (`AppConfig.ready()`).
StoredBehindListener = Callable[[Sequence[int]], object]
_stored_behind_listeners: list[StoredBehindListener] = []


def stored_behind_listener_register(listener: StoredBehindListener) -> None:
    """Have `listener(event_pks)` called for every batch of events stored behind the rollups'
    receive-order watermarks. Registering the same listener twice keeps one."""
    if listener not in _stored_behind_listeners:
        _stored_behind_listeners.append(listener)


def events_stored_behind_notify(event_pks: Sequence[int]) -> None:
    """Announce events just stored with their original received_at (a replay), which the
    rollups' watermarks may already have passed: the next advance would never read them.

    Call inside the transaction that stored them, so that each listener's fold commits or
    rolls back with the events (exactly once). Listeners run in registration order.
    """
    if not event_pks:
        return
    for listener in _stored_behind_listeners:
        listener(event_pks)
