"""Writes generated sample data to the database, or streams it to a running API.

Direct mode: good events are written in bulk — on PostgreSQL as binary COPY into a temporary
table, then `INSERT ... SELECT ...` into events_event, whose key trigger skips the event_ids
already stored (ADR 0021: so a second run with the same seed adds nothing, and the indexes stay
in place); on SQLite through
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
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
import psycopg
from django.db import connection, connections, transaction

from analytics_site.sql import is_postgres
from events.models import Event, RejectedEvent
from events.sample_data.binary import COPY_COLUMNS, chunk_copy_binary
from events.sample_data.catalog import BAD_KINDS
from events.sample_data.chunks import EventChunk, chunk_generate
from events.sample_data.payloads import bad_payload, event_payload, malformed_event_id, uuid_text
from events.sample_data.plan import RunPlan, SampleConfig, run_plan
from events.schema import validate_event_schema
from events.services import (
    ACCEPTED,
    DUPLICATE,
    REJECTED,
    IngestSource,
    event_batch_ingest,
    events_insert,
)
from events.services.partitions import event_partitions_ensure

INGEST_BATCH = 1000  # the API's batch limit: one event_batch_ingest call per slot and batch
GROUP_MS = 300_000  # bad events and re-sends arrive in 5-minute groups
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


def chunk_pending(chunk: EventChunk) -> list[PendingEvent]:
    """Bad events and duplicate re-sends of a chunk, for the ingestion service."""
    pending = []
    for row in np.flatnonzero((chunk.bad_kind >= 0) | chunk.duplicate).tolist():
        kind_index = int(chunk.bad_kind[row])
        event_id = uuid_text(chunk.event_id[row])
        received_ms = int(chunk.resend_ms[row])
        if kind_index >= 0:
            kind = BAD_KINDS[kind_index].name
            pending.append(PendingEvent(received_ms, kind, bad_payload(chunk, row), event_id))
        else:
            pending.append(PendingEvent(received_ms, None, event_payload(chunk, row), event_id))
    return pending


# --- PostgreSQL writer -------------------------------------------------------------------

_STAGE = "sample_event_stage"


def _stage_sql() -> tuple[str, str, str]:
    names = ", ".join(f'"{name}"' for name in COPY_COLUMNS)
    table = Event._meta.db_table
    # Identifiers come from the model and this module, never from input.
    create = (
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} AS "  # noqa: S608
        f"SELECT {names} FROM {table} WITH NO DATA"
    )
    copy = f"COPY {_STAGE} ({names}) FROM STDIN (FORMAT BINARY)"
    insert = f"INSERT INTO {table} ({names}) SELECT {names} FROM {_STAGE}"  # noqa: S608
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


def _chunk_work(plan: RunPlan, index: int, pg: psycopg.Connection | None) -> ChunkResult:
    chunk = chunk_generate(plan, index)
    late = int((chunk.late & (chunk.bad_kind < 0)).sum())
    if pg is not None:
        data, good = chunk_copy_binary(chunk)
        inserted = copy_chunk_postgres(pg, data)
    else:
        good, inserted = _insert_chunk_portable(chunk)
    return ChunkResult(index, good, inserted, late, chunk_pending(chunk))


def _insert_chunk_portable(chunk: EventChunk) -> tuple[int, int]:
    """SQLite: rows built by the schema layer itself, stored by the ingestion service."""
    end = dt.datetime.fromtimestamp(int(chunk.received_ms.max()) / 1000 + 1, tz=dt.UTC)
    rows = []
    for row in np.flatnonzero(chunk.bad_kind < 0).tolist():
        result = validate_event_schema(
            event_payload(chunk, row), received_at=end, max_future_skew=dt.timedelta(0)
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


def _worker_init(conninfo: dict[str, Any], config: SampleConfig) -> None:
    pg = psycopg.connect(**conninfo)
    # A chunk's staging table fits in memory (the default 8 MB spills; measured ~9% faster).
    # Only settable before the session's first temporary table, hence here.
    pg.execute("SET temp_buffers = '128MB'")
    pg.commit()
    _WORKER["pg"] = pg
    _WORKER["plan"] = run_plan(config)


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
    config: SampleConfig, workers: int, on_chunk: Callable[[ChunkResult], None]
) -> None:
    """Generate and store every chunk: in worker processes, each with its own connection and
    committing per chunk, or in this process inside one transaction."""
    chunks = config.chunk_count
    # Inside a caller's transaction, other processes could not see (nor commit) its rows.
    parallel = workers > 1 and chunks > 1 and not connection.in_atomic_block
    if is_postgres() and parallel:
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
    plan = run_plan(config)
    with transaction.atomic():
        pg = None
        if is_postgres():
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
        aliases[malformed_event_id(item.event_id)] = item.event_id
    quarantined = RejectedEvent.objects.filter(event_id__in=list(aliases)).values_list(
        "event_id", flat=True
    )
    seen = {aliases[event_id] for event_id in quarantined}
    stored = Event.objects.filter(event_id__in=[item.event_id for item in bad])
    return seen | {str(event_id) for event_id in stored.values_list("event_id", flat=True)}


def _ingest_pending(pending: list[PendingEvent], summary: LoadSummary, *, rerun: bool) -> None:
    """Send bad events and duplicates through the ingestion service, grouped by the 5 minutes
    they arrive in (received_at = the latest arrival in the group), so quarantine times spread
    over the period like real traffic (grouped by the hour, a whole hour's rejects landed at
    one instant, and a 10-minute pass-rate window saw them all at once). On a rerun (some good
    events of the chunk were stored already), bad events an earlier run already sent are
    skipped, so reruns add no rows."""
    source = IngestSource(key_id=None, ip="127.0.0.1")
    seen = _already_seen([item for item in pending if item.kind]) if rerun else set()
    groups: list[list[PendingEvent]] = []
    for item in sorted(pending, key=lambda item: item.received_ms):
        slot = item.received_ms // GROUP_MS
        last = groups[-1] if groups else None
        if last and last[0].received_ms // GROUP_MS == slot and len(last) < INGEST_BATCH:
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
    config: SampleConfig,
    *,
    workers: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Generate `config.events` events and store them as described in the module docstring.

    Idempotent for a given config: good events already stored are skipped by the key trigger, bad
    events already quarantined are skipped, and re-sent duplicates store nothing.
    """
    started = time.perf_counter()
    summary = LoadSummary(generated=config.events)
    # Past days get their own partitions (not the default one), late events a day more.
    event_partitions_ensure(
        config.end - dt.timedelta(days=config.days + 1), config.end + dt.timedelta(days=1)
    )

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
    tables_analyze()
    summary.elapsed = time.perf_counter() - started
    return summary


def tables_analyze() -> None:
    """Fresh planner statistics after a bulk load: until autovacuum gets to the tables, the
    planner judges the new rows by the old histograms. The rows need nothing else to reach
    the dashboards: they commit with new txids, after every rollup watermark (ADR 0011)."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Event._meta.db_table}, {RejectedEvent._meta.db_table}")
