"""The simulation behind benchmarks/quality_detection.py: the database as of a moment, the
scheduler's runs, and planted hours. Needs Django set up (the script does it).

"As of a moment" without rebuilding anything: inside one transaction that is rolled back at
the end, rows received (or stamped) at or after the moment are deleted, so every check sees
exactly what it would have seen then. Walking backwards in time, each step deletes one more
hour. The checks read rollups (ADR 0019) plus the raw tail after the intake watermark, and
deleted rows would stay counted in folded rollups: so the same transaction also empties the
intake and check rollups and moves the watermark to the start, and every read comes from the
tail, which `tests/integration/test_check_rollups.py` shows equals the rollup reads. Exact
as-of views at the cost of raw reads: this benchmark counts detections, not milliseconds
(`quality_vs_gx.py` measures the cost).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction

from events.sample_data.incident import items_ingest
from events.sample_data.scenarios import Item
from quality.engine.checks import FAIL
from quality.models import (
    AlertOutbox,
    EventHour,
    EventMinute,
    IntakeHour,
    IntakeRuleHour,
    IntakeWatermark,
    NullHour,
    QualityCheck,
)
from quality.services.checks import check_evaluate, check_result_record


class _Rollback(Exception):
    pass


@contextmanager
def rolled_back() -> Iterator[None]:
    """Everything inside happens in one transaction that is thrown away."""
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


def rows_from(moment: dt.datetime) -> None:
    """Delete what had not arrived (or happened) yet at `moment` (inside `rolled_back`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM events_event WHERE received_at >= %s OR timestamp >= %s",
            [moment, moment],
        )
        cursor.execute("DELETE FROM events_rejectedevent WHERE received_at >= %s", [moment])
    _rollups_unfolded()


def _rollups_unfolded() -> None:
    """No rollup row counts a deleted event: empty them, watermark back to the start."""
    for model in (IntakeHour, IntakeRuleHour, EventMinute, EventHour, NullHour):
        model.objects.all().delete()
    IntakeWatermark.objects.update(
        event_txid=None,
        event_received_at=None,
        event_pk=0,
        rejected_txid=None,
        rejected_received_at=None,
        rejected_pk=0,
        events_folded=0,
        rejected_folded=0,
    )


@dataclass
class ReplayResult:
    """Per hour of the clean replay, the failing checks; and the alerts the incident policy
    sent when those runs were recorded in time order."""

    hours: int = 0
    failures: dict[str, list[dt.datetime]] = field(default_factory=dict)
    episodes: int = 0  # runs of consecutive failing hours of one check (an incident each)
    mean_ms: dict[str, float] = field(default_factory=dict)  # per check, for the cost helper
    alerts: dict[str, int] = field(default_factory=dict)


def clean_replay(checks: list[QualityCheck], end: dt.datetime, hours: int) -> ReplayResult:
    """Judge every check at each of the `hours` hours up to `end` (walking backwards), then
    record the runs forwards so the incidents and alerts happen as they would have."""
    judged: list[tuple[dt.datetime, QualityCheck, object, float]] = []
    with rolled_back():
        for step in range(hours):
            moment = end - dt.timedelta(hours=step)
            rows_from(moment)
            for check in checks:
                result, duration = check_evaluate(check, moment)
                judged.append((moment, check, result, duration))
    report = ReplayResult(hours=hours)
    for check in checks:
        spent = [row[3] for row in judged if row[1].pk == check.pk]
        report.mean_ms[check.name] = sum(spent) / max(len(spent), 1)
    for moment, check, result, _ in judged:
        if result.outcome == FAIL:
            report.failures.setdefault(check.name, []).append(moment)
    for moments in report.failures.values():
        ordered = sorted(moments)
        report.episodes += 1 + sum(
            1 for a, b in itertools.pairwise(ordered) if b - a > dt.timedelta(hours=1)
        )
    with rolled_back():
        before = AlertOutbox.objects.count()
        for moment, check, result, duration in sorted(judged, key=lambda row: row[0]):
            check_result_record(check, result, now=moment, duration_ms=duration)
        report.alerts = _alerts_since(before)
    return report


def _alerts_since(before: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in AlertOutbox.objects.order_by("pk")[before:]:
        counts[row.event] = counts.get(row.event, 0) + 1
    return counts


@dataclass
class PlantResult:
    kind: str
    start: dt.datetime
    detected_by: str = ""
    minutes: float | None = None
    runs: int | None = None  # scheduled runs of the detecting check since the start
    failing: set[str] = field(default_factory=set)
    alerts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)


def schedule(checks: list[QualityCheck], start: dt.datetime, minutes: int) -> list[tuple]:
    """(moment, check, run number) of each scheduled run in (start, start + minutes]: every
    check on its own interval, aligned on `start` (the scheduler's grid)."""
    runs = []
    for check in checks:
        for number in range(1, minutes // check.interval_minutes + 1):
            moment = start + dt.timedelta(minutes=number * check.interval_minutes)
            runs.append((moment, check, number))
    return sorted(runs, key=lambda run: (run[0], run[1].name))


def plant_run(
    checks: list[QualityCheck],
    kind: str,
    start: dt.datetime,
    items: list[Item],
    *,
    minutes: int = 60,
    on_record: Callable[[], None] | None = None,
) -> PlantResult:
    """History up to `start`, then the planted hour arriving as scheduled runs go by."""
    result = PlantResult(kind, start)
    pending = sorted(items, key=lambda item: item[0])
    with rolled_back():
        rows_from(start)
        before = AlertOutbox.objects.count()
        outcomes: dict[str, int] = {}
        for moment, check, number in schedule(checks, start, minutes):
            moment_ms = int(moment.timestamp() * 1000)
            due = [item for item in pending if item[0] < moment_ms]
            if due:
                pending = pending[len(due) :]
                for status, n in items_ingest(due).items():
                    outcomes[status] = outcomes.get(status, 0) + n
            judged, duration = check_evaluate(check, moment)
            check_result_record(check, judged, now=moment, duration_ms=duration)
            if judged.outcome == FAIL:
                result.failing.add(check.name)
                if result.runs is None:
                    result.detected_by = check.name
                    result.minutes = (moment - start).total_seconds() / 60
                    result.runs = number
        result.alerts = _alerts_since(before)
        result.outcomes = outcomes
    return result
