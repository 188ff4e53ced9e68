"""Reads of the intake rollups (events by time received, ADR 0005): where their watermarks
stand, and how a period splits into rolled-up hours and raw rows.

A count over [start, end) of received_at is: the rollup rows of the whole hours, plus the raw
rows after the watermarks in those hours (the tail that the next fold takes), plus raw rows for
the partial hours at the edges. All of it is read in one snapshot (`intake_snapshot`), so that
a fold committing between two queries cannot count a row twice or not at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import QuerySet

from analytics_site.sql import is_postgres, sql_execute
from events.facade import events_all, rejected_events_all
from events.receive_order import START, ReceivePosition, after_parts
from quality.models import IntakeWatermark
from quality.selectors.buckets import BUCKETS, bucket_start

# The one row of IntakeWatermark that the intake folds move (quality.services.intake).
WATERMARK_NAME = "intake"
# The README's freshness KPI: "95% of data < 5 minutes old" (IntakeHour.fresh).
FRESH_WITHIN = dt.timedelta(minutes=5)
FRESH_TARGET = 0.95


def fresh_sql(prefix: str = "") -> str:
    """SQL: 1 when an event row was received within FRESH_WITHIN of its timestamp, else 0 (the
    fold's `IntakeHour.fresh` and the raw reads share it, so they agree to the microsecond)."""
    seconds = int(FRESH_WITHIN.total_seconds())
    received, timestamp = f"{prefix}received_at", f"{prefix}timestamp"
    if is_postgres():
        within = f"{timestamp} + interval '{seconds} seconds'"
    else:  # SQLite keeps 'YYYY-MM-DD HH:MM:SS[.ffffff]' text: shift the whole seconds (its
        # date functions round to milliseconds), then put the microseconds back. '%%': Django
        # formats the query with its parameters (raw SQL and the ORM alike), as time_bucket does
        within = (
            f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', substr({timestamp}, 1, 19), "
            f"'+{seconds} seconds') "
            f"|| substr({timestamp}, 20)"
        )
    return f"CASE WHEN {received} <= {within} THEN 1 ELSE 0 END"


Span = tuple[dt.datetime | None, dt.datetime | None]


@dataclass(frozen=True)
class IntakeMarks:
    """Where the intake rollups end, in fold order (ADR 0011): events and rejected events."""

    events: ReceivePosition = START
    rejected: ReceivePosition = START

    def events_after(self) -> list[QuerySet]:
        """Raw stored events not yet in the rollups (the tail that readers add on top), as
        disjoint querysets (`events.receive_order.after_parts`)."""
        return after_parts(events_all(), self.events)

    def rejected_after(self) -> list[QuerySet]:
        return after_parts(rejected_events_all(), self.rejected)


def intake_marks() -> IntakeMarks:
    """The current watermarks; read them in the same snapshot as the rollup rows."""
    row = (
        IntakeWatermark.objects.filter(name=WATERMARK_NAME)
        .values_list(
            "event_txid",
            "event_pk",
            "event_received_at",
            "rejected_txid",
            "rejected_pk",
            "rejected_received_at",
        )
        .first()
    )
    if not row:
        return IntakeMarks()
    return IntakeMarks(ReceivePosition(*row[:3]), ReceivePosition(*row[3:]))


@contextlib.contextmanager
def intake_snapshot() -> Iterator[None]:
    """Watermarks, rollup rows and the raw tail read in one snapshot. Reuses an outer
    transaction (the dashboard pages open a REPEATABLE READ one)."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if is_postgres():
            sql_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


@dataclass(frozen=True)
class IntakeSplit:
    """[start, end) of received_at cut into whole hours (rollup + tail) and raw edges."""

    hours: Span | None
    edges: list[Span]


def intake_split(start: dt.datetime | None, end: dt.datetime | None) -> IntakeSplit:
    first = None
    if start is not None:
        first = bucket_start(start, "hour")
        if first < start:
            first += BUCKETS["hour"]
    last = None if end is None else bucket_start(end, "hour")
    if first is not None and last is not None and first >= last:
        return IntakeSplit(None, [(start, end)])
    edges = []
    if start is not None and first is not None and start < first:
        edges.append((start, first))
    if end is not None and last is not None and last < end:
        edges.append((last, end))
    return IntakeSplit((first, last), edges)


def in_span(rows: QuerySet, span: Span, field: str = "received_at") -> QuerySet:
    """Rows whose `field` lies in [low, high); an open end (None) is unbounded."""
    low, high = span
    if low is not None:
        rows = rows.filter(**{f"{field}__gte": low})
    if high is not None:
        rows = rows.filter(**{f"{field}__lt": high})
    return rows
