# SQL is built from our own table and column names only; values are always bound parameters.
# ruff: noqa: S608
"""Writes for the intake rollups (events by time received, ADR 0005): incremental folds,
replay adjustments, rebuilds.

What they hold, so that readers (`quality.selectors`) equal the raw counts:
- `IntakeHour`: per hour of received_at and event type, stored events (`accepted`), those with
  warnings (`warned`), those received within 5 minutes of their timestamp (`fresh`) and
  rejected events whose status is still quarantined (`quarantined`);
- `IntakeRuleHour`: quarantined rejected events per hour of received_at and failed rule name;
- `EventMinute`: stored events (and warned ones) per minute of event time, for the Live page;
- the check rollups `EventHour` and `NullHour` (`quality.services.check_rollups`, ADR 0019).

Folds: one run folds the events and rejected events in (watermark, upper bound], in fold order
(txid, id; `events.receive_order`, ADR 0011), with additive upserts, and moves both watermarks,
in one transaction holding the watermark row `FOR UPDATE`. A second or concurrent run starts
from the new watermarks, so nothing is counted twice. Rows of transactions still in progress
are after the bound, so a late commit (or a bulk load of past data) is folded when it commits.

Replays are the one change behind the watermarks: a replayed event is stored with its original
received_at but a new txid (so in the raw tail), and its rejected row, which the rollups may
hold, leaves quarantine (or changes its reasons). The replay
transaction calls `intake_replay_adjust`, which takes the same row lock and adjusts exactly
the rows the rollups already hold (under the watermarks); rows after them are still raw tail,
and the next fold reads them as the replay left them. Whichever of a fold and a replay takes
the lock first, the other sees its committed result.

The same SQL runs on PostgreSQL and SQLite (`make demo`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import connection, transaction

from analytics_site.sql import (
    fold_until_caught_up,
    has_warnings_sql,
    is_postgres,
    set_local_utc,
    sql_execute,
    sql_param,
    time_bucket,
)
from events.facade import (
    EVENTS_TABLE,
    REJECTED_EVENTS_TABLE,
    REJECTED_STATUS_QUARANTINED,
    events_all,
    rejected_events_all,
)
from events.receive_order import ReceivePosition, range_sql, upper_bound
from quality.models import (
    EventHour,
    EventMinute,
    IntakeHour,
    IntakeRuleHour,
    IntakeWatermark,
    NullHour,
)
from quality.selectors.intake import FRESH_WITHIN, WATERMARK_NAME, IntakeMarks, fresh_sql
from quality.services.check_rollups import check_rollups_adjust, check_rollups_fold

HOUR_TABLE = IntakeHour._meta.db_table
RULE_TABLE = IntakeRuleHour._meta.db_table
MINUTE_TABLE = EventMinute._meta.db_table

# ---------------------------------------------------------------------------------------------
# Watermark row and dialect helpers.


def _lock_watermark() -> IntakeWatermark:
    IntakeWatermark.objects.get_or_create(name=WATERMARK_NAME)
    return IntakeWatermark.objects.select_for_update().get(name=WATERMARK_NAME)


def _marks_of(mark: IntakeWatermark) -> IntakeMarks:
    return IntakeMarks(
        ReceivePosition(mark.event_txid, mark.event_pk, mark.event_received_at),
        ReceivePosition(mark.rejected_txid, mark.rejected_pk, mark.rejected_received_at),
    )


def _warned_expr() -> str:
    return f"CASE WHEN {has_warnings_sql()} THEN 1 ELSE 0 END"


def _is_fresh(received_at: dt.datetime, timestamp: dt.datetime) -> int:
    return 1 if received_at - timestamp <= FRESH_WITHIN else 0


def _rule_names_sql(where: str) -> str:
    """(hour, rule name, distinct rejected events) for the rejected rows matching `where`."""
    if is_postgres():
        return (
            f"SELECT {time_bucket('t.received_at', 'hour')}, reason->>'rule', COUNT(DISTINCT t.id) "
            f"FROM {REJECTED_EVENTS_TABLE} t, jsonb_array_elements(t.reasons) AS reason "
            f"WHERE {where} AND reason->>'rule' IS NOT NULL GROUP BY 1, 2"
        )
    return (
        f"SELECT {time_bucket('t.received_at', 'hour')}, "
        "CAST(json_extract(reason.value, '$.rule') AS TEXT), COUNT(DISTINCT t.id) "
        f"FROM {REJECTED_EVENTS_TABLE} t, json_each(t.reasons) AS reason "
        f"WHERE {where} AND json_extract(reason.value, '$.rule') IS NOT NULL GROUP BY 1, 2"
    )


def _additive(table: str, keys: Sequence[str], values: Sequence[str]) -> str:
    """ON CONFLICT clause adding the new values to an existing row's."""
    sets = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in values)
    return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"


# ---------------------------------------------------------------------------------------------
# Folds.


def _count(table: str, where: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {table} t WHERE {where}", [sql_param(p) for p in params]
        )
        return cursor.fetchone()[0]


def _fold_events(where: str, params: list[Any]) -> None:
    sql_execute(
        f"INSERT INTO {HOUR_TABLE} (bucket, event_type, accepted, warned, quarantined, fresh) "
        f"SELECT {time_bucket('t.received_at', 'hour')}, t.event_type, COUNT(*), "
        f"SUM({_warned_expr()}), 0, SUM({fresh_sql('t.')}) FROM {EVENTS_TABLE} t WHERE {where} "
        "GROUP BY 1, 2 "
        + _additive(HOUR_TABLE, ("bucket", "event_type"), ("accepted", "warned", "fresh")),
        params,
    )
    sql_execute(
        f"INSERT INTO {MINUTE_TABLE} (bucket, events, warned) "
        f"SELECT {time_bucket('t.timestamp', 'minute')}, COUNT(*), SUM({_warned_expr()}) "
        f"FROM {EVENTS_TABLE} t WHERE {where} GROUP BY 1 "
        + _additive(MINUTE_TABLE, ("bucket",), ("events", "warned")),
        params,
    )


def _fold_rejected(where: str, params: list[Any]) -> None:
    """Only rows still quarantined count: one replayed before its fold was never counted."""
    where = f"{where} AND t.status = %s"
    params = [*params, REJECTED_STATUS_QUARANTINED]
    sql_execute(
        f"INSERT INTO {HOUR_TABLE} (bucket, event_type, accepted, warned, quarantined) "
        f"SELECT {time_bucket('t.received_at', 'hour')}, t.event_type, 0, 0, COUNT(*) "
        f"FROM {REJECTED_EVENTS_TABLE} t WHERE {where} GROUP BY 1, 2 "
        + _additive(HOUR_TABLE, ("bucket", "event_type"), ("quarantined",)),
        params,
    )
    sql_execute(
        f"INSERT INTO {RULE_TABLE} (bucket, rule, quarantined) {_rule_names_sql(where)} "
        + _additive(RULE_TABLE, ("bucket", "rule"), ("quarantined",)),
        params,
    )


def intake_advance_batch(*, now: dt.datetime | None = None, batch: int | None = None) -> int:
    """Fold the next batch of events and of rejected events (in fold order) into the intake
    rollups. Returns how many rows were folded. Safe to run concurrently and repeatedly."""
    folded = 0
    with transaction.atomic():
        mark = _lock_watermark()
        set_local_utc()
        marks = _marks_of(mark)
        upper = upper_bound(events_all(), marks.events, now=now, batch=batch)
        if upper is not None:
            where, params = range_sql(marks.events, upper, "t.")
            _fold_events(where, params)
            check_rollups_fold(where, params, marks.events, upper)
            count = _count(EVENTS_TABLE, where, params)
            mark.event_txid, mark.event_pk = upper.txid, upper.pk
            mark.event_received_at = upper.received_at
            mark.events_folded += count
            folded += count
        upper = upper_bound(rejected_events_all(), marks.rejected, now=now, batch=batch)
        if upper is not None:
            where, params = range_sql(marks.rejected, upper, "t.")
            _fold_rejected(where, params)
            count = _count(REJECTED_EVENTS_TABLE, where, params)
            mark.rejected_txid, mark.rejected_pk = upper.txid, upper.pk
            mark.rejected_received_at = upper.received_at
            mark.rejected_folded += count
            folded += count
        if folded:
            mark.save()
    return folded


@dataclass(frozen=True)
class IntakeRun:
    rows: int
    batches: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "batches": self.batches, "seconds": round(self.seconds, 3)}


def intake_advance(
    *, now: dt.datetime | None = None, batch: int | None = None, max_seconds: float = 25.0
) -> IntakeRun:
    """Catch up in batches until nothing is pending or the time budget is spent."""
    started = time.monotonic()
    total, batches = fold_until_caught_up(
        lambda: intake_advance_batch(now=now, batch=batch), max_seconds
    )
    return IntakeRun(total, batches, time.monotonic() - started)


def intake_rebuild(*, now: dt.datetime | None = None, batch: int | None = None) -> IntakeRun:
    """Empty the intake rollups and fold every stored and rejected event again."""
    started = time.monotonic()
    with transaction.atomic():
        _lock_watermark()
        for model in (IntakeHour, IntakeRuleHour, EventMinute, EventHour, NullHour):
            model.objects.all().delete()
        IntakeWatermark.objects.filter(name=WATERMARK_NAME).update(
            event_txid=None,
            event_received_at=None,
            event_pk=0,
            rejected_txid=None,
            rejected_received_at=None,
            rejected_pk=0,
            events_folded=0,
            rejected_folded=0,
        )
    run = intake_advance(now=now, batch=batch, max_seconds=float("inf"))
    return IntakeRun(run.rows, run.batches, time.monotonic() - started)


# ---------------------------------------------------------------------------------------------
# Replays.


class RejectedRow(Protocol):
    """What a replay adjustment reads of a rejected event (a `rejected_events_all()` row)."""

    pk: Any
    txid: int
    received_at: dt.datetime
    event_type: str
    reasons: Any
    status: str


def _rule_names(reasons: object) -> set[str]:
    """The distinct failed rule names of a rejected row's reasons (as the fold's SQL reads them)."""
    if not isinstance(reasons, list):
        return set()
    return {
        str(reason["rule"])
        for reason in reasons
        if isinstance(reason, dict) and reason.get("rule") is not None
    }


@dataclass(frozen=True)
class QuarantinedBefore:
    """A rejected row as the rollups may have counted it, taken before a replay changes it."""

    pk: int
    txid: int
    received_at: dt.datetime
    event_type: str
    rules: frozenset[str]

    @classmethod
    def of(cls, row: RejectedRow) -> QuarantinedBefore:
        rules = frozenset(_rule_names(row.reasons))
        return cls(row.pk, row.txid, row.received_at, row.event_type, rules)


def _hour(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _upsert_values(
    table: str, keys: Sequence[str], values: Sequence[str], rows: Iterable[tuple]
) -> None:
    rows = [row for row in rows if any(row[len(keys) :])]
    if not rows:
        return
    columns = (*keys, *values)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    sql_execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {placeholders} "
        + _additive(table, keys, values),
        [value for row in rows for value in row],
    )


def intake_replay_adjust(
    before: Sequence[QuarantinedBefore],
    after: Sequence[RejectedRow],
    inserted_event_pks: Iterable[int],
) -> None:
    """Keep the rollups equal to the raw counts across a replay. Call inside its transaction.

    `before`: the replayed rejected rows as they were; `after`: the same rows as saved (status
    replayed, or still quarantined with new reasons); `inserted_event_pks`: events the replay
    stored (at their original received_at). Only rows under the watermarks are adjusted: the
    others are raw tail, and the next fold reads them as they are now.
    """
    mark = _lock_watermark()
    marks = _marks_of(mark)
    # Deltas: [accepted, warned, quarantined, fresh] per (hour, type); [events, warned] per
    # minute.
    hours: defaultdict[tuple[dt.datetime, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    rules: Counter[tuple[dt.datetime, str]] = Counter()
    minutes: defaultdict[dt.datetime, list[int]] = defaultdict(lambda: [0, 0])
    now_by_pk = {row.pk: row for row in after}
    for old in before:
        if not marks.rejected.holds(old.txid, old.pk):
            continue
        hour = _hour(old.received_at)
        new = now_by_pk.get(old.pk)
        still = new is not None and new.status == REJECTED_STATUS_QUARANTINED
        new_rules = _rule_names(new.reasons) if still else set()
        if not still:
            hours[(hour, old.event_type)][2] -= 1
        rules.subtract((hour, rule) for rule in old.rules - new_rules)
        rules.update((hour, rule) for rule in new_rules - old.rules)
    inserted_event_pks = list(inserted_event_pks)
    stored = events_all().filter(pk__in=inserted_event_pks)
    for txid, received_at, pk, event_type, timestamp, warnings in stored.values_list(
        "txid", "received_at", "id", "event_type", "timestamp", "warnings"
    ):
        if not marks.events.holds(txid, pk):
            continue
        warned = 1 if warnings else 0
        counts = hours[(_hour(received_at), event_type)]
        counts[0], counts[1] = counts[0] + 1, counts[1] + warned
        counts[3] += _is_fresh(received_at, timestamp)
        counts = minutes[timestamp.astimezone(dt.UTC).replace(second=0, microsecond=0)]
        counts[0], counts[1] = counts[0] + 1, counts[1] + warned
    _upsert_values(
        HOUR_TABLE,
        ("bucket", "event_type"),
        ("accepted", "warned", "quarantined", "fresh"),
        [(*key, *deltas) for key, deltas in sorted(hours.items())],
    )
    _upsert_values(
        RULE_TABLE,
        ("bucket", "rule"),
        ("quarantined",),
        [(*key, delta) for key, delta in sorted(rules.items())],
    )
    _upsert_values(
        MINUTE_TABLE,
        ("bucket",),
        ("events", "warned"),
        [(minute, *deltas) for minute, deltas in sorted(minutes.items())],
    )
    check_rollups_adjust(marks.events, added=inserted_event_pks)
