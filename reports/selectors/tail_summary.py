"""A small raw tail, summarized once and reused by every read of the same rollup state.

Reads used to pass over every tail event for every number (thousands of events, about ten
passes a page, plus a session and a user-key lookup per read). A summary holds the tail as
cells instead, so a read is a pass over hundreds of cells and a few bitmap operations:
- event cells (hour, event type, device, country) and product cells (hour, product, category,
  event type, device, country): counts, warned events, revenue;
- each tail session merged over its tail events, and the rolled-up row it will merge with
  (looked up once, when a read first needs it); from both, session-metric deltas per (hour,
  device, country, step): minus the rolled-up row, plus the merged one, as the next fold will;
- each tail user's earliest tail event and cells, and the user's rolled-up key (keys never
  change within a generation, so known keys carry over to the next watermark's summary).
Periods are aligned to hours (reports.filters), so an hour cell is wholly in or out of one.

Reuse (PostgreSQL): rollup contents are a function of (generation, watermark), and events are
only ever inserted, so under one rollup state the tail only grows. A summary of `count` events
with ids up to `max_id` is still exact when the snapshot's tail has the same count and max id;
when it has grown, the events after `max_id` are folded into a copy, if they account for the
whole growth (an event can commit after one with a higher id; then it is rebuilt). Summaries
are process-local and never mutated once published, so concurrent reads never see a half-built
one. The rollup task shares its summary through the cache after each fold
(`tail_summary_share`), so another process's first read of the new state extends it. A tail
bigger than ROLLUP_TAIL_IN_MEMORY_MAX (a stopped worker) is not summarized:
readers aggregate it in SQL. An UPDATE of a tail event by hand is not seen until the watermark
moves (the same rule as for writes behind it: ADR 0003).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from pyroaring import BitMap

from events.facade import EVENTS_TABLE
from reports.filters import DashboardFilters
from reports.models import SessionRollup, UserFirstSeen
from reports.models.grains import FUNNEL_STEPS, PRODUCT_EVENT_TYPES
from reports.selectors.tail import (
    TailRow,
    memo,
    micros,
    rollup_state_of_snapshot,
    tail_rows_load,
    tail_where,
)

STEP_INDEX = {step: index + 1 for index, step in enumerate(FUNNEL_STEPS)}
HOUR_US = 3_600_000_000
_PRODUCT_TYPES = frozenset(PRODUCT_EVENT_TYPES)
_SESSION_FIELDS = (
    "session_id",
    "started_at",
    "first_event_pk",
    "device_type",
    "country",
    "reached_step",
    "revenue",
)

# A session as readers merge it: (start, first event id, device, country, step, revenue); the
# start in integer microseconds since the epoch, like every time in a summary.
Session = tuple[int, int, str, str, int, Decimal]


def session_merge(old: Session | None, new: Session) -> Session:
    """The rollup's session upsert: attributes of the first event by (time, id), furthest
    step, summed revenue."""
    if old is None:
        return new
    first = new if new[:2] < old[:2] else old
    return (*first[:4], max(old[4], new[4]), old[5] + new[5])


@dataclass(frozen=True)
class TailSummary:
    """Hours are integer microseconds since the epoch (hour starts, UTC)."""

    state: tuple  # (generation, watermark received_at, watermark id)
    count: int
    max_id: int
    events: dict[tuple, tuple[int, int, Decimal]]  # (hour, type, device, country)
    products: dict[tuple, tuple[int, Decimal]]  # (hour, product, category, type, device, country)
    sessions: dict[str, Session]  # merged over tail events only
    user_first: dict[str, int]  # earliest tail event per user
    user_cells: dict[tuple, frozenset[str]]  # (hour, device, country): users
    # Rolled-up rows and keys already looked up (None: not rolled up at this watermark); the
    # rest are looked up when a read first needs them (a funnel needs no user keys).
    known_sessions: dict[str, Session | None]
    known_keys: dict[str, int | None]
    derived: dict[str, Any] = field(default_factory=dict, compare=False)

    def rolled_sessions(self) -> dict[str, Session | None]:
        """The rolled-up row of every tail session (None for sessions only in the tail)."""
        if "rolled_sessions" not in self.derived:
            missing = [s for s in self.sessions if s not in self.known_sessions]
            found = rolled_sessions(missing)
            self.derived["rolled_sessions"] = {
                **self.known_sessions,
                **{session_id: found.get(session_id) for session_id in missing},
            }
        return self.derived["rolled_sessions"]

    def user_keys(self) -> dict[str, int | None]:
        """The rolled-up key of every tail user (None for users only in the tail)."""
        if "user_keys" not in self.derived:
            missing = [u for u in self.user_first if u not in self.known_keys]
            found = user_keys_lookup(missing)
            self.derived["user_keys"] = {
                **self.known_keys,
                **{user_id: found.get(user_id) for user_id in missing},
            }
        return self.derived["user_keys"]

    def session_deltas(self) -> dict[tuple, tuple[int, Decimal]]:
        """{(hour, device, country, step): (sessions, revenue)} to add to the rollup rows."""
        if "sessions" not in self.derived:
            cells: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
            rolled = self.rolled_sessions()
            for session_id, state in self.sessions.items():
                old = rolled[session_id]
                if old is not None:
                    cell = cells[(old[0] - old[0] % HOUR_US, *old[2:5])]
                    cell[0] -= 1
                    cell[1] -= old[5]
                merged = session_merge(old, state)
                cell = cells[(merged[0] - merged[0] % HOUR_US, *merged[2:5])]
                cell[0] += 1
                cell[1] += merged[5]
            self.derived["sessions"] = {key: tuple(value) for key, value in cells.items()}
        return self.derived["sessions"]

    def user_cell_keys(self) -> dict[tuple, tuple[BitMap, frozenset[str]]]:
        """{(hour, device, country): (keys of rolled-up users, ids of users without a key)}."""
        if "user_cells" not in self.derived:
            keys = self.user_keys()
            cells = {}
            for cell, user_ids in self.user_cells.items():
                known = BitMap(keys[u] for u in user_ids if keys[u] is not None)
                cells[cell] = (known, frozenset(u for u in user_ids if keys[u] is None))
            self.derived["user_cells"] = cells
        return self.derived["user_cells"]


class Period:
    """A read's filters in summary terms: hour cells match by start, device and country."""

    def __init__(self, filters: DashboardFilters) -> None:
        self.start, self.end = micros(filters.start), micros(filters.end)
        self.device, self.country = filters.device, filters.country

    def matches(self, hour: int, device: str, country: str) -> bool:
        return (
            self.start <= hour < self.end
            and (not self.device or device == self.device)
            and (not self.country or country == self.country)
        )


# Ids to look up, sent as one JSON array: psycopg binds a list of 5,000 strings as an array
# literal quoted in Python (~6 ms at 10M events' tails); orjson writes the same in C.
_WANTED = "json_array_elements_text(%s::json) AS wanted(id)"


def _wanted(ids: list[str]) -> str:
    """The ids in index order (neighbouring probes share pages: a quarter faster)."""
    return orjson.dumps(sorted(ids)).decode()


def rolled_sessions(session_ids: list[str]) -> dict[str, Session]:
    """Rolled-up rows of these sessions: one index probe each (a LATERAL ... LIMIT 1 the
    planner cannot turn into a scan of every session, whatever the table's statistics), in
    index order so neighbouring probes share pages (a quarter faster)."""
    if not session_ids:
        return {}
    if connection.vendor != "postgresql":
        qs = SessionRollup.objects.filter(session_id__in=session_ids)
        return {row[0]: (micros(row[1]), *row[2:]) for row in qs.values_list(*_SESSION_FIELDS)}
    columns = ", ".join(
        "(EXTRACT(EPOCH FROM started_at) * 1000000)::bigint" if name == "started_at" else name
        for name in _SESSION_FIELDS
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.* FROM {_WANTED} CROSS JOIN LATERAL "  # noqa: S608
            f"(SELECT {columns} FROM {SessionRollup._meta.db_table} "
            "WHERE session_id = wanted.id LIMIT 1) AS s",
            [_wanted(session_ids)],
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def user_keys_lookup(user_ids: list[str]) -> dict[str, int]:
    """Rolled-up keys of these users (index probes, as for sessions)."""
    if not user_ids:
        return {}
    if connection.vendor != "postgresql":
        known = UserFirstSeen.objects.filter(user_id__in=user_ids)
        return dict(known.values_list("user_id", "id"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT f.* FROM {_WANTED} CROSS JOIN LATERAL "  # noqa: S608
            f"(SELECT user_id, id FROM {UserFirstSeen._meta.db_table} "
            "WHERE user_id = wanted.id LIMIT 1) AS f",
            [_wanted(user_ids)],
        )
        return dict(cursor.fetchall())


def summary_extend(base: TailSummary, rows: Iterable[TailRow], count: int) -> TailSummary:
    """`base` plus tail rows it does not hold, as a new summary."""
    event_cells = dict(base.events)
    product_cells = dict(base.products)
    sessions = dict(base.sessions)
    user_first = dict(base.user_first)
    added_users: dict[tuple, set[str]] = defaultdict(set)
    max_id = base.max_id
    zero = Decimal(0)
    for (
        event_id,
        event_type,
        ts,
        user_id,
        session_id,
        device,
        country,
        product,
        category,
        revenue,
        warned,
    ) in rows:
        max_id = max(max_id, event_id)
        hour = ts - ts % HOUR_US
        purchase = revenue if event_type == "purchase" and revenue is not None else zero
        key = (hour, event_type, device, country)
        cell = event_cells.get(key) or (0, 0, zero)
        event_cells[key] = (cell[0] + 1, cell[1] + warned, cell[2] + purchase)
        if event_type in _PRODUCT_TYPES:
            key = (hour, product, category, event_type, device, country)
            cell = product_cells.get(key) or (0, zero)
            product_cells[key] = (cell[0] + 1, cell[1] + (revenue or zero))
        state = (ts, event_id, device, country, STEP_INDEX.get(event_type, 0), purchase)
        sessions[session_id] = session_merge(sessions.get(session_id), state)
        first = user_first.get(user_id)
        if first is None or ts < first:
            user_first[user_id] = ts
        added_users[(hour, device, country)].add(user_id)
    user_cells = dict(base.user_cells)
    for cell, user_ids in added_users.items():
        user_cells[cell] = user_cells.get(cell, frozenset()) | user_ids
    return TailSummary(
        base.state,
        count,
        max_id,
        event_cells,
        product_cells,
        sessions,
        user_first,
        user_cells,
        base.derived.get("rolled_sessions", base.known_sessions),
        base.derived.get("user_keys", base.known_keys),
    )


def _empty(state: tuple, previous: TailSummary | None) -> TailSummary:
    """An empty summary; user keys carry over from a summary of the same generation."""
    keys: dict[str, int | None] = {}
    if previous is not None and previous.state[0] == state[0] and state[0] is not None:
        known = previous.derived.get("user_keys", previous.known_keys)
        keys = {user_id: key for user_id, key in known.items() if key is not None}
    return TailSummary(state, 0, 0, {}, {}, {}, {}, {}, {}, keys)


_latest: TailSummary | None = None
_latest_lock = threading.Lock()


def tail_summaries_clear() -> None:
    """Forget the process's summary (benchmarks: the first read after a fold)."""
    global _latest
    with _latest_lock:
        _latest = None


def _publish(summary: TailSummary) -> None:
    global _latest
    with _latest_lock:
        _latest = summary


def _shared_key(state: tuple) -> str | None:
    generation, txid, event_pk = state
    if generation is None:  # no rollup run yet: nothing identifies the database's state
        return None
    return f"reports:tail_summary:{generation}:{txid}:{event_pk}"


def tail_summary_share() -> TailSummary | None:
    """Put the snapshot's summary, lookups done, in the shared cache (the rollup task does it
    after each fold): the first read of another process under this rollup state then extends
    it instead of summarizing the whole tail and probing every session and user again.
    Returns the summary shared (None: none, the tail is too big or no rollup ran yet)."""
    summary = tail_summary()
    if summary is None or _shared_key(summary.state) is None:
        return None
    summary.rolled_sessions()
    summary.user_keys()
    summary.session_deltas()
    summary.user_cell_keys()
    summary_to_cache(summary)
    return summary


def summary_to_cache(summary: TailSummary) -> None:
    """Share a summary under its rollup state (benchmarks put back the one a fold shared)."""
    key = _shared_key(summary.state)
    if key is not None:
        cache.set(key, summary, settings.ROLLUP_CACHE_SECONDS)


def _shared(state: tuple) -> TailSummary | None:
    key = _shared_key(state)
    summary = cache.get(key) if key else None
    return summary if isinstance(summary, TailSummary) and summary.state == state else None


def _tail_size(limit: int) -> tuple[int, int]:
    """(events, highest id) of the snapshot's tail, counting at most limit + 1 events."""
    where, params = tail_where()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COALESCE(MAX(id), 0) FROM (SELECT id FROM {EVENTS_TABLE} "  # noqa: S608
            f"WHERE {where} LIMIT %s) AS tail",
            [*params, limit + 1],
        )
        return cursor.fetchone()


def _summary_load() -> TailSummary | None:
    limit = getattr(settings, "ROLLUP_TAIL_IN_MEMORY_MAX", 50_000)
    state = rollup_state_of_snapshot()
    if connection.vendor != "postgresql":  # the demo: no reuse across reads
        rows = tail_rows_load(limit)
        return None if rows is None else summary_extend(_empty(state, None), rows, len(rows))
    count, max_id = _tail_size(limit)
    if count > limit:
        return None
    latest = _latest
    if latest is None or latest.state != state:
        shared = _shared(state)
        if shared is not None:
            _publish(shared)
            latest = shared
    if latest is not None and latest.state == state:
        if (latest.count, latest.max_id) == (count, max_id):
            return latest
        if count > latest.count and max_id > latest.max_id:
            rows = tail_rows_load(limit, after_id=latest.max_id)
            if rows is not None and latest.count + len(rows) == count:
                summary = summary_extend(latest, rows, count)
                _publish(summary)
                return summary
    rows = tail_rows_load(limit)
    if rows is None:
        return None
    summary = summary_extend(_empty(state, latest), rows, len(rows))
    _publish(summary)
    return summary


def tail_summary() -> TailSummary | None:
    """The snapshot's tail summary; None when the tail is too big to hold (aggregate in SQL)."""
    return memo("tail_summary", _summary_load)


def tail_is_empty() -> bool:
    summary = tail_summary()
    return summary is not None and summary.count == 0
