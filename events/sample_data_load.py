"""Writes generated sample data to the database, or streams it to a running API.

Direct mode: good events are written in bulk — on PostgreSQL as binary COPY into a temporary
table, then `INSERT ... SELECT ... ON CONFLICT (event_id) DO NOTHING` into events_event (so a
second run with the same seed adds nothing, and the indexes stay in place); on SQLite through
`events.services.events_insert`. Bad events and re-sent duplicates go through
`events.services.event_batch_ingest`, exactly as the API would handle them: bad ones land in
RejectedEvent with their reasons, duplicates are counted and not stored.

Why binary COPY through a staging table: COPY into events_event fails on the first event_id
already stored, and the staged INSERT measured as fast as a direct COPY (the index updates cost
the same either way) while it keeps reruns idempotent. Binary spares PostgreSQL the parsing of
timestamps, uuids and numerics, and the encoding here is one numpy pass per chunk.

On PostgreSQL with more than one chunk, worker processes (2 by default) each generate, encode
and load whole chunks on their own connection, committing per chunk; this process sends each
finished chunk's bad events and duplicates through the ingestion service meanwhile. PostgreSQL's
index maintenance is the bottleneck, which is why event ids are index-friendly (see
`sample_data.event_ids`) and rows are loaded in id order.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from multiprocessing import get_context
from typing import Any, TextIO

import numpy as np
import orjson
import psycopg
from django.conf import settings
from django.db import connection, connections, transaction

from events import sample_data as gen
from events.models import Event, RejectedEvent
from events.services import (
    ACCEPTED,
    DUPLICATE,
    REJECTED,
    IngestSource,
    event_batch_ingest,
    events_insert,
)

INGEST_BATCH = 1000  # the API's batch limit: one event_batch_ingest call per hour and batch
RESENT_DUPLICATE = "resent_duplicate"


@dataclass
class LoadSummary:
    """What a direct run did; `accepted` and `rejected` equal the rows it added."""

    generated: int = 0
    resent: int = 0  # duplicate copies sent on top of `generated`
    accepted: int = 0
    duplicates: int = 0
    rejected_by_kind: Counter[str] = field(default_factory=Counter)
    accepted_bad_by_kind: Counter[str] = field(default_factory=Counter)  # rule_only, no rule
    already_quarantined: int = 0  # bad events skipped: an earlier run already sent them
    late: int = 0
    elapsed: float = 0.0

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_kind.values())

    @property
    def events_per_second(self) -> float:
        return (self.generated + self.resent) / self.elapsed if self.elapsed else 0.0

    def lines(self) -> list[str]:
        lines = [
            f"generated {self.generated:,} events (+{self.resent:,} re-sent duplicates) "
            f"in {self.elapsed:.1f} s: {self.events_per_second:,.0f} events/s",
            f"  accepted      {self.accepted:,}",
            f"  duplicates    {self.duplicates:,}",
            f"  rejected      {self.rejected:,}",
            f"  late-arriving {self.late:,}  (generated received_at hours after the timestamp)",
        ]
        for kind, count in sorted(self.rejected_by_kind.items()):
            lines.append(f"    {kind:<22} {count:,}")
        for kind, count in sorted(self.accepted_bad_by_kind.items()):
            lines.append(f"  accepted bad ({kind}, no stored rule caught it): {count:,}")
        if self.already_quarantined:
            lines.append(
                f"  already in quarantine from an earlier run: {self.already_quarantined:,}"
            )
        return lines


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """A bad event or a duplicate re-send, left for the ingestion service."""

    received_ms: int
    kind: str | None  # a bad kind, or None for a duplicate re-send
    payload: dict[str, Any]
    event_id: str  # the generated UUID (a malformed bad event carries another id)


@dataclass
class ChunkResult:
    """What a worker did with one chunk, and the payloads left for the ingestion service."""

    index: int
    good: int
    inserted: int
    late: int
    pending: list[PendingEvent]


# --- binary COPY encoding ----------------------------------------------------------------

_COPY_COLUMNS = (
    # fixed width, encoded by numpy in one pass
    "event_id",
    "timestamp",
    "client_timestamp",
    "received_at",
    "user_id",
    "session_id",
    "country",
    # variable width, pre-encoded per vocabulary value
    "event_type",
    "device_type",
    "page_url",
    "search_query",
    "referrer",
    "product_id",
    "category",
    "price",
    "currency",
    "quantity",
    "order_id",
    "revenue",
    "properties",
    "warnings",
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01, PostgreSQL's timestamp zero
_USER_ID_WIDTH = len(gen.user_id_text(0))
_SESSION_ID_WIDTH = len("sess_") + 16
_FIXED = np.dtype(
    [
        ("fields", ">i2"),
        ("id_len", ">i4"),
        ("id", "V16"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        ("cts_len", ">i4"),
        ("cts", ">i8"),
        ("rcv_len", ">i4"),
        ("rcv", ">i8"),
        ("user_len", ">i4"),
        ("user", f"S{_USER_ID_WIDTH}"),
        ("session_len", ">i4"),
        ("session", f"S{_SESSION_ID_WIDTH}"),
        ("country_len", ">i4"),
        ("country", "S2"),
    ]
)


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _text(value: str) -> bytes:
    return _field(value.encode())


def _numeric(cents: int) -> bytes:
    """PostgreSQL's binary numeric: base-10000 digits, weight, sign, display scale 2."""
    sign = 0x4000 if cents < 0 else 0
    whole, fraction = divmod(abs(cents), 100)
    digits: list[int] = []
    while whole:
        whole, digit = divmod(whole, 10_000)
        digits.insert(0, digit)
    weight = len(digits) - 1
    digits.append(fraction * 100)
    while digits and digits[0] == 0:
        digits.pop(0)
        weight -= 1
    while digits and digits[-1] == 0:
        digits.pop()
    if not digits:
        weight = 0
    header = [len(digits), weight, sign, 2]
    packed = b"".join(value.to_bytes(2, "big", signed=True) for value in header + digits)
    return _field(packed)


def _jsonb(value: Any) -> bytes:
    return _field(b"\x01" + orjson.dumps(value))


class _Pieces:
    """Pre-encoded binary fields for every vocabulary value (built once per process)."""

    def __init__(self) -> None:
        vocab = gen._vocab()
        # event_type x device_type, index type * 4 + device
        self.type_device = np.array(
            [_text(name) + _text(device) for name in gen.EVENT_TYPES for device in gen.DEVICES],
            dtype=object,
        )
        self.countries = np.array(gen.COUNTRY_CODES, dtype="S2")
        search_of_page = {
            vocab.first_search_page + i: term for i, term in enumerate(vocab.searches)
        }
        self.pages = np.array(
            [_text(page) + _text(search_of_page.get(i, "")) for i, page in enumerate(vocab.pages)],
            dtype=object,
        )
        self.referrers = np.array([_text(url) for url in vocab.referrers], dtype=object)
        empty = _text("")
        usd = _text(gen.CURRENCY)
        none = empty + empty + _NULL + empty
        priced = [
            _text(p.product_id) + _text(p.category) + _numeric(p.price_cents) + usd
            for p in vocab.products
        ]
        unpriced = [_text(p.product_id) + _text(p.category) + _NULL + usd for p in vocab.products]
        # index: 0 none, 1..P priced product, P+1..2P product without a unit price
        self.products = np.array([none, *priced, *unpriced], dtype=object)
        self.quantities = np.array(
            [_NULL] + [_field(q.to_bytes(4, "big", signed=True)) for q in range(1, 1000)],
            dtype=object,
        )
        self.warnings = _jsonb([])
        no_order = empty + _NULL
        # order_id, revenue, properties, warnings of events without an order: index utm + 1
        self.tails = np.array(
            [no_order + _jsonb({}) + self.warnings]
            + [no_order + _jsonb(props) + self.warnings for props in gen.UTM_PROPERTIES],
            dtype=object,
        )


_PIECES: _Pieces | None = None


def _pieces() -> _Pieces:
    global _PIECES
    if _PIECES is None:
        _PIECES = _Pieces()
    return _PIECES


def _user_ids(users: np.ndarray) -> np.ndarray:
    digits = np.char.zfill(users.astype(f"S{_USER_ID_WIDTH - 5}"), _USER_ID_WIDTH - 5)
    return np.char.add(b"user_", digits)


def chunk_copy_binary(chunk: gen.EventChunk) -> tuple[bytes, int]:
    """The chunk's good events as a PostgreSQL binary COPY stream (columns `_COPY_COLUMNS`)."""
    pieces = _pieces()
    rows = np.flatnonzero(chunk.bad_kind < 0)
    # In event_id order (the order they were generated in, see gen.event_ids), the unique
    # index takes the chunk as one run of appends.
    rows = rows[np.argsort(chunk.event_id[rows, :8].copy().view(">u8").ravel(), kind="stable")]
    n = len(rows)
    fixed = np.zeros(n, dtype=_FIXED)
    fixed["fields"] = len(_COPY_COLUMNS)
    fixed["id_len"] = 16
    fixed["id"] = np.ascontiguousarray(chunk.event_id[rows]).view("V16").ravel()
    fixed["ts_len"] = fixed["cts_len"] = fixed["rcv_len"] = 8
    fixed["ts"] = fixed["cts"] = (chunk.ts_ms[rows] - _PG_EPOCH_MS) * 1000
    fixed["rcv"] = (chunk.received_ms[rows] - _PG_EPOCH_MS) * 1000
    fixed["user_len"] = _USER_ID_WIDTH
    fixed["user"] = _user_ids(chunk.user[rows])
    fixed["session_len"] = _SESSION_ID_WIDTH
    fixed["session"] = np.array(chunk.session_ids, dtype=f"S{_SESSION_ID_WIDTH}")[
        chunk.session[rows]
    ]
    fixed["country_len"] = 2
    fixed["country"] = pieces.countries[chunk.country[rows]]

    product = chunk.product[rows]
    products_count = len(gen._vocab().products)
    product_code = np.where(
        product < 0,
        0,
        np.where(chunk.price_cents[rows] >= 0, product + 1, product + 1 + products_count),
    )
    quantity = np.minimum(chunk.quantity[rows], len(pieces.quantities) - 1)
    tails = pieces.tails[chunk.utm[rows] + 1].tolist()
    for position in np.flatnonzero(chunk.order[rows] >= 0).tolist():
        row = int(rows[position])
        properties = gen.event_properties(chunk, row) if row in chunk.order_items else {}
        tails[position] = (
            _text(chunk.order_ids[chunk.order[row]])
            + _numeric(int(chunk.revenue_cents[row]))
            + _jsonb(properties)
            + pieces.warnings
        )
    columns = (
        fixed.view(f"V{_FIXED.itemsize}").tolist(),
        pieces.type_device[chunk.event_type[rows] * 4 + chunk.device[rows]].tolist(),
        pieces.pages[chunk.page[rows]].tolist(),
        pieces.referrers[chunk.referrer[rows]].tolist(),
        pieces.products[product_code].tolist(),
        pieces.quantities[quantity].tolist(),
        tails,
    )
    body = b"".join(chain.from_iterable(zip(*columns, strict=True)))
    return _COPY_HEADER + body + _COPY_TRAILER, n


def chunk_pending(chunk: gen.EventChunk) -> list[PendingEvent]:
    """Bad events and duplicate re-sends of a chunk, for the ingestion service."""
    pending = []
    for row in np.flatnonzero((chunk.bad_kind >= 0) | chunk.duplicate).tolist():
        kind_index = int(chunk.bad_kind[row])
        event_id = gen.uuid_text(chunk.event_id[row])
        received_ms = int(chunk.resend_ms[row])
        if kind_index >= 0:
            kind = gen.BAD_KINDS[kind_index].name
            pending.append(PendingEvent(received_ms, kind, gen.bad_payload(chunk, row), event_id))
        else:
            pending.append(PendingEvent(received_ms, None, gen.event_payload(chunk, row), event_id))
    return pending


# --- PostgreSQL writer -------------------------------------------------------------------

_STAGE = "sample_event_stage"


def _stage_sql() -> tuple[str, str, str]:
    names = ", ".join(f'"{name}"' for name in _COPY_COLUMNS)
    table = Event._meta.db_table
    # Identifiers come from the model and this module, never from input.
    create = (
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} AS "  # noqa: S608
        f"SELECT {names} FROM {table} WITH NO DATA"
    )
    copy = f"COPY {_STAGE} ({names}) FROM STDIN (FORMAT BINARY)"
    insert = (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {_STAGE} "  # noqa: S608
        "ON CONFLICT (event_id) DO NOTHING"
    )
    return create, copy, insert


def copy_chunk_postgres(pg: psycopg.Connection, data: bytes) -> int:
    """Load one chunk through the staging table; returns the rows new to events_event."""
    create, copy, insert = _stage_sql()
    with pg.cursor() as cursor:
        cursor.execute(create)
        cursor.execute(f"TRUNCATE {_STAGE}")
        with cursor.copy(copy) as writer:
            view = memoryview(data)
            for offset in range(0, len(data), 1 << 22):
                writer.write(view[offset : offset + (1 << 22)])
        cursor.execute(insert)
        return cursor.rowcount


def _chunk_work(plan: gen.RunPlan, index: int, pg: psycopg.Connection | None) -> ChunkResult:
    chunk = gen.chunk_generate(plan, index)
    late = int((chunk.late & (chunk.bad_kind < 0)).sum())
    if pg is not None:
        data, good = chunk_copy_binary(chunk)
        inserted = copy_chunk_postgres(pg, data)
    else:
        good, inserted = _insert_chunk_portable(chunk)
    return ChunkResult(index, good, inserted, late, chunk_pending(chunk))


def _insert_chunk_portable(chunk: gen.EventChunk) -> tuple[int, int]:
    """SQLite: rows built by the schema layer itself, stored by the ingestion service."""
    from events.schema import validate_event_schema

    end = dt.datetime.fromtimestamp(int(chunk.received_ms.max()) / 1000 + 1, tz=dt.UTC)
    rows = []
    for row in np.flatnonzero(chunk.bad_kind < 0).tolist():
        result = validate_event_schema(
            gen.event_payload(chunk, row), received_at=end, max_future_skew=dt.timedelta(0)
        )
        if result.row is None:
            raise AssertionError(f"generated a good event the schema refuses: {result.errors}")
        stored = {key: value for key, value in result.row.items() if key != "sent_at"}
        stored["received_at"] = dt.datetime.fromtimestamp(chunk.received_ms[row] / 1000, tz=dt.UTC)
        stored["warnings"] = []
        rows.append(stored)
    inserted = 0
    for start in range(0, len(rows), 5000):
        inserted += len(events_insert(rows[start : start + 5000]))
    return len(rows), inserted


_WORKER: dict[str, Any] = {}


def _worker_init(conninfo: dict[str, Any], config: gen.SampleConfig) -> None:
    pg = psycopg.connect(**conninfo)
    # A chunk's staging table fits in memory (the default 8 MB spills; measured ~9% faster).
    # Only settable before the session's first temporary table, hence here.
    pg.execute("SET temp_buffers = '128MB'")
    pg.commit()
    _WORKER["pg"] = pg
    _WORKER["plan"] = gen.run_plan(config)


def _worker_chunk(index: int) -> ChunkResult:
    pg = _WORKER["pg"]
    result = _chunk_work(_WORKER["plan"], index, pg)
    pg.commit()
    return result


def _conninfo() -> dict[str, Any]:
    params = connection.settings_dict
    info = {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
    }
    options = {k: v for k, v in (params.get("OPTIONS") or {}).items() if isinstance(v, str | int)}
    return {key: value for key, value in {**info, **options}.items() if value is not None}


def _chunk_results(
    config: gen.SampleConfig, workers: int, on_chunk: Callable[[ChunkResult], None]
) -> None:
    """Generate and store every chunk: in worker processes, each with its own connection and
    committing per chunk, or in this process inside one transaction."""
    chunks = config.chunk_count
    # Inside a caller's transaction, other processes could not see (nor commit) its rows.
    parallel = workers > 1 and chunks > 1 and not connection.in_atomic_block
    if settings.IS_POSTGRES and parallel:
        connections.close_all()  # never share a socket with forked children
        context = get_context("fork")
        with ProcessPoolExecutor(
            max_workers=min(workers, chunks),
            mp_context=context,
            initializer=_worker_init,
            initargs=(_conninfo(), config),
        ) as pool:
            for result in pool.map(_worker_chunk, range(chunks)):
                on_chunk(result)
        return
    plan = gen.run_plan(config)
    with transaction.atomic():
        pg = None
        if settings.IS_POSTGRES:
            connection.ensure_connection()
            pg = connection.connection
        for index in range(chunks):
            on_chunk(_chunk_work(plan, index, pg))


def _already_seen(bad: list[PendingEvent]) -> set[str]:
    """Generated ids of bad events that an earlier run with the same seed already sent: kept
    in quarantine (under the id they carried) or, for a rule_only kind with no rule then,
    stored. Event ids and bad fates depend on the seed only, so reruns meet them again."""
    aliases = {}
    for item in bad:
        aliases[item.event_id] = item.event_id
        aliases[gen.malformed_event_id(item.event_id)] = item.event_id
    quarantined = RejectedEvent.objects.filter(event_id__in=list(aliases)).values_list(
        "event_id", flat=True
    )
    seen = {aliases[event_id] for event_id in quarantined}
    stored = Event.objects.filter(event_id__in=[item.event_id for item in bad])
    return seen | {str(event_id) for event_id in stored.values_list("event_id", flat=True)}


def _ingest_pending(pending: list[PendingEvent], summary: LoadSummary, *, rerun: bool) -> None:
    """Send bad events and duplicates through the ingestion service, grouped by the hour they
    arrive (received_at = the latest arrival in the group), so quarantine times spread over
    the period like real traffic. On a rerun (some good events of the chunk were stored
    already), bad events an earlier run already sent are skipped, so reruns add no rows."""
    source = IngestSource(key_id=None, ip="127.0.0.1")
    seen = _already_seen([item for item in pending if item.kind]) if rerun else set()
    groups: list[list[PendingEvent]] = []
    for item in sorted(pending, key=lambda item: item.received_ms):
        hour = item.received_ms // 3_600_000
        last = groups[-1] if groups else None
        if last and last[0].received_ms // 3_600_000 == hour and len(last) < INGEST_BATCH:
            last.append(item)
        else:
            groups.append([item])
    for group in groups:
        batch = [item for item in group if not (item.kind and item.event_id in seen)]
        summary.already_quarantined += len(group) - len(batch)
        if not batch:
            continue
        received_at = dt.datetime.fromtimestamp(batch[-1].received_ms / 1000, tz=dt.UTC)
        outcomes = event_batch_ingest(
            [item.payload for item in batch], source=source, received_at=received_at
        )
        for item, outcome in zip(batch, outcomes, strict=True):
            if outcome.status == ACCEPTED:
                summary.accepted += 1
                if item.kind:
                    summary.accepted_bad_by_kind[item.kind] += 1
            elif outcome.status == DUPLICATE:
                summary.duplicates += 1
            elif outcome.status == REJECTED:
                summary.rejected_by_kind[item.kind or RESENT_DUPLICATE] += 1


def sample_data_load(
    config: gen.SampleConfig,
    *,
    workers: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Generate `config.events` events and store them as described in the module docstring.

    Idempotent for a given config: good events are inserted with ON CONFLICT DO NOTHING, bad
    events already quarantined are skipped, and re-sent duplicates store nothing.
    """
    started = time.perf_counter()
    summary = LoadSummary(generated=config.events)

    def on_chunk(result: ChunkResult) -> None:
        summary.accepted += result.inserted
        summary.duplicates += result.good - result.inserted
        summary.late += result.late
        resent = sum(1 for item in result.pending if item.kind is None)
        summary.resent += resent
        # The chunk's good events are committed (or in this transaction): its duplicates
        # can be sent now, while the workers load the next chunks.
        _ingest_pending(result.pending, summary, rerun=result.inserted < result.good)
        if on_progress:
            on_progress(result.good + len(result.pending) - resent)

    _chunk_results(config, workers, on_chunk)
    summary.elapsed = time.perf_counter() - started
    return summary


# --- streaming through the HTTP API ------------------------------------------------------


@dataclass
class StreamSummary:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: int = 0  # HTTP errors other than a rejected event, and connection failures
    elapsed: float = 0.0


def _shift_timestamp(payload: dict[str, Any], delta_ms: int) -> dict[str, Any]:
    """Move a payload's timestamp by delta_ms (left alone when missing or unparseable)."""
    value = payload.get("timestamp")
    if not isinstance(value, str):
        return payload
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return payload
    shifted = moment + dt.timedelta(milliseconds=delta_ms)
    payload["timestamp"] = shifted.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return payload


def stream_payloads(config: gen.SampleConfig) -> Iterable[tuple[gen.SampleEvent, int]]:
    """Payloads in sending order with the generated arrival time of each (ms)."""
    for event in gen.sample_events(config):
        yield event, event.received_ms


def sample_data_stream(
    config: gen.SampleConfig,
    *,
    url: str,
    rate: float,
    duration: float,
    batch_size: int = 1,
    api_key: str | None = None,
    out: TextIO = sys.stdout,
    max_error_lines: int = 20,
) -> StreamSummary:
    """Send generated events live to POST /events (or /events/batch), `rate` events per second
    for at most `duration` seconds, with timestamps moved to the moment of sending.

    The loop is bounded by both the duration and the number of events generated for it, so it
    always stops by itself. Bad events are sent too (the API rejects them with 400 or in the
    batch results); duplicates re-send an earlier event unchanged.
    """
    import requests

    session = requests.Session()
    session.headers["Content-Type"] = "application/json"
    if api_key:
        session.headers["Authorization"] = f"Bearer {api_key}"
    base = url.rstrip("/")
    endpoint = f"{base}/events/batch" if batch_size > 1 else f"{base}/events"
    summary = StreamSummary()
    error_lines = 0
    started = time.monotonic()
    deadline = started + duration
    sent_copies: dict[str, dict[str, Any]] = {}
    batch: list[dict[str, Any]] = []
    last_report = started

    def report_error(text: str) -> None:
        nonlocal error_lines
        error_lines += 1
        if error_lines <= max_error_lines:
            out.write(text[:300] + "\n")
        elif error_lines == max_error_lines + 1:
            out.write("... (further errors are counted, not printed)\n")

    def send(events: list[dict[str, Any]]) -> None:
        body = {"events": events} if batch_size > 1 else events[0]
        try:
            response = session.post(endpoint, data=orjson.dumps(body), timeout=10)
        except requests.RequestException as exc:
            summary.errors += len(events)
            report_error(f"request failed: {exc}")
            return
        summary.sent += len(events)
        if batch_size > 1 and response.status_code == 200:
            data = response.json()
            summary.accepted += data.get("accepted", 0)
            summary.duplicates += data.get("duplicates", 0)
            summary.rejected += data.get("rejected", 0)
            return
        if response.status_code == 201:
            summary.accepted += 1
        elif response.status_code == 200:
            summary.duplicates += 1
        elif response.status_code == 400 and batch_size == 1:
            summary.rejected += 1
            report_error(f"400 rejected: {response.text}")
        else:
            summary.errors += len(events)
            report_error(f"HTTP {response.status_code}: {response.text}")

    for sent_index, (event, generated_ms) in enumerate(stream_payloads(config)):
        due = started + sent_index / rate
        now = time.monotonic()
        if due >= deadline or now >= deadline:
            break
        if due > now:
            time.sleep(due - now)
        payload = event.payload
        event_id = str(payload.get("event_id"))
        if event.duplicate and event_id in sent_copies:
            payload = sent_copies[event_id]
        else:
            now_ms = int(time.time() * 1000)
            payload = _shift_timestamp(dict(payload), now_ms - generated_ms)
            if event.is_good:
                sent_copies[event_id] = payload
        batch.append(payload)
        if len(batch) >= batch_size:
            send(batch)
            batch = []
        if time.monotonic() - last_report >= 1.0:
            last_report = time.monotonic()
            out.write(
                f"sent {summary.sent:,}  accepted {summary.accepted:,}  "
                f"duplicates {summary.duplicates:,}  rejected {summary.rejected:,}  "
                f"errors {summary.errors:,}\n"
            )
    if batch:
        send(batch)
    summary.elapsed = time.monotonic() - started
    return summary


def stream_config(seed: int, rate: float, duration: float, **rates: float) -> gen.SampleConfig:
    """Enough events for `rate` x `duration`, anchored now (timestamps are moved when sent)."""
    events = max(1, math.ceil(rate * duration))
    return gen.SampleConfig(
        events=events, end=gen.default_end(dt.datetime.now(dt.UTC)), seed=seed, days=1, **rates
    )
