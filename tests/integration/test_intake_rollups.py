"""Intake rollups (ADR 0005): the Data quality page's pass-rate series and quarantine summary
and the Live page's per-minute counts equal the same numbers computed from raw rows, whatever
is folded, in the raw tail, replayed from quarantine, late, or on a bucket boundary."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from analytics_site.celery import app
from events.models import Event, RejectedEvent
from events.services import IngestSource, event_batch_ingest
from quality import selectors
from quality.models import EventMinute, IntakeHour, IntakeRuleHour, IntakeWatermark
from quality.services import intake, replay
from quality.services.rules import rules_set_enabled
from reports.filters import filters_from_query
from reports.selectors import pages as report_selectors
from tests.factories import (
    EventFactory,
    QualityRuleFactory,
    RejectedEventFactory,
    event_payload,
    purchase_payload,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 12, 30, 40, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=5)  # folds "now": everything received by NOW is folded
HOUR = dt.timedelta(hours=1)
RULES = ("required", "choice", "price-cap", None)


# --- the raw computations the rollup reads must equal --------------------------------------


def _floor(value: dt.datetime, bucket: str) -> dt.datetime:
    value = value.astimezone(dt.UTC)
    if bucket == "minute":
        return value.replace(second=0, microsecond=0)
    if bucket == "hour":
        return value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def raw_series(start: dt.datetime, end: dt.datetime, bucket: str) -> dict:
    counts: dict = {}
    for received_at, warnings in Event.objects.values_list("received_at", "warnings"):
        if start <= received_at < end:
            entry = counts.setdefault(_floor(received_at, bucket), Counter())
            entry["accepted"] += 1
            entry["warned"] += 1 if warnings else 0
    for received_at, status in RejectedEvent.objects.values_list("received_at", "status"):
        if start <= received_at < end and status == "quarantined":
            counts.setdefault(_floor(received_at, bucket), Counter())["rejected"] += 1
    return {key: (c["accepted"], c["rejected"], c["warned"]) for key, c in counts.items()}


def read_series(start: dt.datetime, end: dt.datetime, bucket: str) -> dict:
    return {
        row["bucket"]: (row["accepted"], row["rejected"], row["warned"])
        for row in selectors.validation_pass_rate_series(start, end, bucket)
        if row["accepted"] or row["rejected"] or row["warned"]
    }


def raw_quarantine(start: dt.datetime | None, end: dt.datetime | None) -> dict:
    by_type: Counter = Counter()
    by_rule: Counter = Counter()
    for received_at, event_type, reasons in RejectedEvent.objects.filter(
        status="quarantined"
    ).values_list("received_at", "event_type", "reasons"):
        if (start and received_at < start) or (end and received_at >= end):
            continue
        by_type[event_type or "unknown"] += 1
        by_rule.update({r["rule"] for r in reasons if r.get("rule") is not None})
    return {
        "quarantined": sum(by_type.values()),
        "by_event_type": dict(by_type),
        "by_rule": dict(by_rule),
    }


def raw_live(now: dt.datetime) -> tuple[list[int], int]:
    first = _floor(now, "minute") - dt.timedelta(minutes=29)
    per_minute = [0] * 30
    warned = 0
    for timestamp, warnings in Event.objects.values_list("timestamp", "warnings"):
        index = int((timestamp - first).total_seconds() // 60)
        if 0 <= index < 30:
            per_minute[index] += 1
            warned += 1 if warnings else 0
    return per_minute, warned


def assert_reads_equal_raw(now: dt.datetime = NOW) -> None:
    ranges = [
        (now - dt.timedelta(days=3), now + HOUR, "hour"),
        (
            _floor(now, "day") - dt.timedelta(days=3),
            _floor(now, "day") + dt.timedelta(days=1),
            "day",
        ),
        (now - dt.timedelta(hours=5, minutes=17), now - dt.timedelta(minutes=3), "hour"),  # edges
        (now - dt.timedelta(minutes=20), now + dt.timedelta(minutes=1), "minute"),
        (now - dt.timedelta(minutes=40), now - dt.timedelta(minutes=35), "hour"),  # inside an hour
    ]
    for start, end, bucket in ranges:
        assert read_series(start, end, bucket) == raw_series(start, end, bucket), (start, bucket)
        summary = selectors.quarantine_summary(start, end)
        assert summary == raw_quarantine(start, end), (start, end)
    assert selectors.quarantine_summary() == raw_quarantine(None, None)
    live = report_selectors.live(now=now)
    per_minute, warned = raw_live(now)
    assert [m["count"] for m in live["per_minute"]] == per_minute
    assert live["quality"]["warned"] == warned


# --- data ------------------------------------------------------------------------------------


def generated(seed: int, count: int, newest: dt.datetime, days: float = 3) -> None:
    """Events received in the `days` days up to `newest`: 5% hours late, 10% with warnings,
    some exactly on hour boundaries or a microsecond before a minute; rejected events with one
    or two (sometimes repeated) rules, a few with no type or already replayed."""
    rng = random.Random(seed)
    oldest = newest - dt.timedelta(days=days)
    for index in range(count):
        received_at = newest - dt.timedelta(seconds=rng.randrange(int(days * 86400)))
        boundary = None
        if index % 17 == 0:
            boundary = _floor(received_at, "hour")
        elif index % 19 == 0:
            boundary = _floor(received_at, "minute") - dt.timedelta(microseconds=1)
        if boundary is not None and boundary > oldest:
            received_at = boundary
        late = dt.timedelta(hours=rng.randrange(1, 30)) if rng.random() < 0.05 else dt.timedelta()
        EventFactory(
            received_at=received_at,
            timestamp=received_at - late - dt.timedelta(seconds=rng.randrange(5)),
            event_type=rng.choice(["page_view", "product_view", "purchase"]),
            warnings=[{"field": "currency", "rule": "usd", "message": "w"}]
            if rng.random() < 0.1
            else [],
        )
        if rng.random() < 0.15:
            rules = rng.sample(RULES, rng.randrange(1, 3))
            reasons = [{"field": "x", "rule": rule, "message": "m"} for rule in rules]
            if rng.random() < 0.2:
                reasons.append(dict(reasons[0]))  # the same rule twice counts once
            RejectedEventFactory(
                received_at=received_at,
                event_type=rng.choice(["page_view", "purchase", ""]),
                reasons=reasons,
                status="replayed" if rng.random() < 0.1 else "quarantined",
            )


def quarantine_purchases(received_at: dt.datetime, count: int, currency: str = "USD") -> list[int]:
    """Purchases a price cap rejects, received at `received_at`; returns quarantine ids."""
    payloads = [
        purchase_payload(
            price=150,
            quantity=1,
            revenue=150,
            currency=currency,
            timestamp=(received_at - dt.timedelta(minutes=2)).isoformat(),
        )
        for _ in range(count)
    ]
    payloads.append(
        event_payload(country="XX", timestamp=(received_at - dt.timedelta(minutes=1)).isoformat())
    )
    outcomes = event_batch_ingest(payloads, source=IngestSource(), received_at=received_at)
    return [o.rejected_id for o in outcomes if o.rejected_id is not None]


def rollup_rows() -> tuple:
    """Every non-zero rollup row (a replay can leave a row at zero; a rebuild has none)."""
    hours = IntakeHour.objects.values_list(
        "bucket", "event_type", "accepted", "warned", "quarantined", "fresh"
    )
    rules = IntakeRuleHour.objects.values_list("bucket", "rule", "quarantined")
    minutes = EventMinute.objects.values_list("bucket", "events", "warned")
    return tuple(
        sorted(row for row in rows if any(row[keys:]))
        for rows, keys in ((hours, 2), (rules, 2), (minutes, 1))
    )


# --- tests -----------------------------------------------------------------------------------


def test_empty_database_reads_zero_and_folds_nothing():
    """No rows: nothing to fold, a zero-filled series with no pass rate, empty summaries."""
    assert intake.intake_advance_batch(now=LATER) == 0
    hour = _floor(NOW, "hour")
    series = selectors.validation_pass_rate_series(hour - 3 * HOUR, hour, "hour")
    assert len(series) == 3
    assert all(row["pass_rate"] is None and row["accepted"] == 0 for row in series)
    assert selectors.quarantine_summary(NOW - HOUR, NOW) == {
        "quarantined": 0,
        "by_event_type": {},
        "by_rule": {},
    }
    assert selectors.events_per_minute(NOW - HOUR, NOW) == {}
    assert sum(m["count"] for m in report_selectors.live(now=NOW)["per_minute"]) == 0


def test_reads_equal_raw_unfolded_folded_with_a_tail_and_after_a_rebuild():
    """Before any fold (all raw tail), folded in small batches, with newer rows in the tail,
    and after a rebuild, every number equals the raw computation."""
    generated(seed=1, count=400, newest=NOW)
    assert_reads_equal_raw()
    folded = intake.intake_advance(now=LATER, batch=37).rows
    assert folded == Event.objects.count() + RejectedEvent.objects.count()
    assert IntakeHour.objects.exists() and EventMinute.objects.exists()
    assert_reads_equal_raw()
    # The tail: received after the watermark, some with old event times.
    generated(seed=2, count=60, newest=NOW + dt.timedelta(minutes=10), days=10 / 1440)
    assert_reads_equal_raw(NOW + dt.timedelta(minutes=10))
    intake.intake_advance(now=NOW + dt.timedelta(minutes=30))
    assert_reads_equal_raw(NOW + dt.timedelta(minutes=10))
    incremental = rollup_rows()
    intake.intake_rebuild(now=NOW + dt.timedelta(minutes=30))
    assert rollup_rows() == incremental  # folded in steps or at once: the same numbers


def test_folding_twice_changes_nothing():
    """A second run (a redelivered task) finds nothing pending and leaves every row as it was."""
    generated(seed=3, count=120, newest=NOW)
    intake.intake_advance(now=LATER)
    before = rollup_rows()
    assert intake.intake_advance_batch(now=LATER) == 0
    assert rollup_rows() == before


def test_safety_lag_leaves_just_received_rows_to_the_tail():
    """Rows received within the safety lag are not folded yet, and are still counted."""
    EventFactory(received_at=NOW - dt.timedelta(seconds=3), timestamp=NOW - dt.timedelta(seconds=4))
    RejectedEventFactory(received_at=NOW - dt.timedelta(seconds=3))
    assert intake.intake_advance_batch(now=NOW) == 0
    assert read_series(NOW - HOUR, NOW + HOUR, "hour") == {_floor(NOW, "hour"): (1, 1, 0)}


@pytest.mark.parametrize("folded_before_replay", [True, False])
def test_replays_keep_reads_equal_raw(folded_before_replay):
    """Replayed events are stored at their old receipt time (behind the watermark) and leave
    quarantine; still-failing ones change their reasons. Folded or still in the tail when
    replayed, the numbers equal the raw computation, and a later fold does not count twice."""
    rule = QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )
    QualityRuleFactory(
        name="currency-usd",
        kind="allowed_values",
        field="currency",
        params={"values": ["USD"]},
        severity="warning",
    )
    generated(seed=4, count=150, newest=NOW)
    old = quarantine_purchases(NOW - dt.timedelta(hours=7, minutes=59, seconds=59), 3, "EUR")
    recent = quarantine_purchases(NOW - dt.timedelta(minutes=1), 2)
    if folded_before_replay:
        intake.intake_advance(now=LATER)
    assert_reads_equal_raw()
    rules_set_enabled([rule.pk], False)
    counts = replay.quarantine_replay([*old, *recent])
    assert (counts.accepted, counts.still_rejected) == (5, 2)  # the schema failures stay
    assert Event.objects.filter(warnings=[]).count() < Event.objects.count()
    assert_reads_equal_raw()
    intake.intake_advance(now=LATER)
    assert_reads_equal_raw()
    before = rollup_rows()
    intake.intake_rebuild(now=LATER)
    assert rollup_rows() == before


def test_replay_with_changed_reasons_moves_rule_counts():
    """A still-rejected replay judged by a renamed rule: the rule counts follow the new reason."""
    rule = QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )
    ids = quarantine_purchases(NOW - 2 * HOUR, 2)
    intake.intake_advance(now=LATER)
    rule.name, rule.params = "price-cap-120", {"max": 120}
    rule.save()
    replay.quarantine_replay(ids)
    summary = selectors.quarantine_summary(NOW - 3 * HOUR, NOW)
    assert summary["by_rule"]["price-cap-120"] == 2
    assert "price-cap" not in summary["by_rule"]
    assert summary == raw_quarantine(NOW - 3 * HOUR, NOW)


def test_quality_page_reads_the_rollups():
    """The Data quality page's 7-day series and quarantine equal raw counts over its period."""
    generated(seed=5, count=200, newest=NOW)
    intake.intake_advance(now=LATER)
    f = filters_from_query({"preset": "7d"}, now=NOW)
    page = report_selectors.quality_page(f)
    assert {
        row["bucket"]: (row["accepted"], row["rejected"], row["warned"])
        for row in page["pass_rate_series"]
        if row["accepted"] or row["rejected"]
    } == raw_series(f.start, f.end, f.bucket)
    assert page["quarantine"] == raw_quarantine(f.start, f.end)


@pytest.mark.django_db(transaction=True)
def test_a_fold_that_runs_during_a_replay_counts_nothing_twice(require_postgres):
    """A fold holds the watermark while a replay has stored its events and moved its rows out
    of quarantine, uncommitted: the fold counts the rows as they were, the replay waits for the
    lock and then adjusts them against the new watermark. The numbers equal the raw ones."""
    rule = QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )
    ids = quarantine_purchases(NOW - 3 * HOUR, 4)
    generated(seed=6, count=40, newest=NOW)
    rules_set_enabled([rule.pk], False)
    intake.intake_advance_batch(now=NOW - 10 * HOUR)  # the watermark row exists
    locked, errors = threading.Event(), []

    def fold_holding_the_lock() -> None:
        try:
            with transaction.atomic():
                intake.intake_advance_batch(now=NOW - 9 * HOUR)  # takes the lock
                locked.set()
                _wait_for_a_lock_waiter()
                intake.intake_advance_batch(now=LATER)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            locked.set()
            connection.close()

    fold = threading.Thread(target=fold_holding_the_lock)
    fold.start()
    locked.wait(10)
    counts = replay.quarantine_replay(ids)
    fold.join(30)
    assert not errors and not fold.is_alive()
    assert counts.accepted == 4
    last = RejectedEvent.objects.values_list("txid", "id").get(id=max(ids))
    assert selectors.intake_marks().rejected.holds(*last)
    assert_reads_equal_raw()


def _wait_for_a_lock_waiter(timeout: float = 10.0) -> None:
    """Until another backend waits for a lock (the replay, on the watermark row)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the replay never waited for the watermark lock")


def test_the_beat_schedule_folds_intake_rollups(settings):
    """`run_scheduler` (the demo's beat) runs the registered intake task, which folds rows."""
    settings.ROLLUP_SAFETY_LAG_SECONDS = 0
    entry = settings.CELERY_BEAT_SCHEDULE["quality-intake-advance"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    received = timezone.now() - dt.timedelta(minutes=2)
    EventFactory.create_batch(5, received_at=received, timestamp=received)
    RejectedEventFactory(received_at=received)
    out = StringIO()
    call_command("run_scheduler", "--once", stdout=out)
    assert "quality-intake-advance" in out.getvalue()
    mark = IntakeWatermark.objects.get()
    assert (mark.events_folded, mark.rejected_folded) == (5, 1)
    assert IntakeHour.objects.get(event_type="page_view").accepted == 5


@pytest.mark.parametrize("command", ["rebuild_intake_rollups", "rebuild_receipt_rollups"])
def test_rebuild_command_refolds_everything(command):
    """`rebuild_intake_rollups --no-safety-lag` folds every row, also the newest ones; its old
    name (in the README before issue 10) still works."""
    generated(seed=7, count=30, newest=timezone.now())
    out = StringIO()
    call_command(command, "--no-safety-lag", stdout=out)
    mark = IntakeWatermark.objects.get()
    assert mark.events_folded == Event.objects.count()
    assert mark.rejected_folded == RejectedEvent.objects.count()
    assert "Folded" in out.getvalue()
