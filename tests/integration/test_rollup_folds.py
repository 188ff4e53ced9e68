"""Folding events into the rollups in receive order, against the real database: late events,
duplicates, empty ranges, batch boundaries, UTC bucket boundaries, out-of-order sessions,
idempotency and concurrent runs."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from reports.filters import DashboardFilters, filters_from_query
from reports.models import (
    EventMetricDaily,
    EventMetricHourly,
    SessionMetricDaily,
    SessionRollup,
    UserFirstSeen,
)
from reports.selectors import pages
from reports.selectors.watermark import watermark_get
from reports.services.rollups import rollups_advance, rollups_rebuild
from tests.factories import EventFactory
from tests.rollup_scaffold import LATER, NOW, advance, daily, event_resend, table_state


def test_empty_database_rolls_up_nothing_and_reads_zero(require_postgres, db):
    """No events: no rollup rows, no watermark, zero KPIs and a zero-filled series."""
    assert advance() == 0
    assert watermark_get().is_start
    f = filters_from_query({}, now=NOW)
    overview = pages.overview(f)
    assert {name: kpi["value"] for name, kpi in overview["kpis"].items()} == {
        "events": 0,
        "sessions": 0,
        "users": 0,
        "conversion_rate": 0.0,
        "revenue": 0.0,
        "average_order_value": 0.0,
    }
    assert all(kpi["change_pct"] is None for kpi in overview["kpis"].values())
    assert overview["series"]["events"] == [0] * 7
    assert pages.funnel(f)["steps"][0]["step_conversion"] is None
    assert pages.products(f)["cart_abandonment"]["abandonment_rate"] is None


def test_late_event_updates_the_bucket_of_its_timestamp(require_postgres, db):
    """An event received now with a timestamp three days old lands in that old day and hour."""
    EventFactory(timestamp=NOW - dt.timedelta(minutes=10), received_at=NOW)
    advance()
    old = NOW - dt.timedelta(days=3, minutes=25)
    EventFactory(timestamp=old, received_at=NOW + dt.timedelta(minutes=5), session_id="late")
    assert advance() == 1
    assert daily(old.date()) == 1
    assert EventMetricHourly.objects.get(bucket=old.replace(minute=0)).events == 1
    assert daily(NOW.date()) == 1
    assert SessionRollup.objects.get(session_id="late").started_at == old


def test_duplicate_event_ids_are_stored_and_counted_once(require_postgres, db):
    """A resent event (same event_id) is not stored twice, so the rollup counts it once."""
    event = EventFactory(timestamp=NOW - dt.timedelta(hours=1), received_at=NOW)
    event_resend(event)
    advance()
    assert daily(NOW.date()) == 1


def test_running_twice_changes_nothing(require_postgres, db):
    """Idempotency: a second run (or a redelivered task) finds nothing pending."""
    for minute in range(30):
        EventFactory(timestamp=NOW - dt.timedelta(minutes=minute * 7), received_at=NOW)
    assert advance() == 30
    state = table_state()
    assert advance() == 0
    assert table_state() == state


def test_small_batches_equal_one_big_batch(require_postgres, db):
    """Batch boundaries (in receive order) do not change any rollup row."""
    for index in range(40):
        EventFactory(
            timestamp=NOW - dt.timedelta(minutes=index * 37),
            received_at=NOW - dt.timedelta(seconds=index % 3),  # ties on received_at
            event_type=("page_view", "product_view", "add_to_cart", "purchase")[index % 4],
            session_id=f"s{index % 6}",
            revenue=Decimal("5.00") if index % 4 == 3 else None,
        )
    advance(batch=3)
    in_batches = table_state()
    rollups_rebuild(now=LATER)
    assert table_state() == in_batches


def test_utc_bucket_boundaries(require_postgres, db):
    """Buckets are UTC: 23:59:59.999999 belongs to its day, midnight to the next; an event
    sent with a +02:00 offset is bucketed by its UTC instant; periods are [start, end)."""
    midnight = dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    EventFactory(timestamp=midnight - dt.timedelta(microseconds=1), received_at=NOW)
    EventFactory(timestamp=midnight, received_at=NOW)
    berlin = dt.timezone(dt.timedelta(hours=2))
    EventFactory(timestamp=dt.datetime(2026, 3, 9, 1, 30, tzinfo=berlin), received_at=NOW)
    advance()
    assert daily(dt.date(2026, 3, 8)) == 2  # 23:59:59.999999 and 23:30 UTC
    assert daily(dt.date(2026, 3, 9)) == 1
    assert EventMetricHourly.objects.get(bucket=midnight - dt.timedelta(hours=1)).events == 2
    assert EventMetricHourly.objects.get(bucket=midnight).events == 1
    day = DashboardFilters(midnight, midnight + dt.timedelta(days=1), "custom")
    assert pages.overview(day)["kpis"]["events"]["value"] == 1
    assert pages.overview(day.previous())["kpis"]["events"]["value"] == 2


def test_session_merges_events_arriving_out_of_order(require_postgres, db):
    """A session's events arriving in reverse order across runs: the session starts at its
    earliest event, takes that event's device and country, keeps its furthest step, and the
    session metrics hold it exactly once, in its start bucket."""
    session = "s-reverse"
    steps = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase")
    for offset, event_type in reversed(list(enumerate(steps))):
        EventFactory(
            session_id=session,
            user_id="u1",
            event_type=event_type,
            timestamp=NOW - dt.timedelta(days=1, hours=2) + dt.timedelta(hours=offset),
            received_at=NOW + dt.timedelta(minutes=10 - offset),
            device_type="mobile" if offset == 0 else "desktop",
            country="DE" if offset == 0 else "US",
            revenue=Decimal("12.50") if event_type == "purchase" else None,
        )
        advance(now=NOW + dt.timedelta(hours=2))
    row = SessionRollup.objects.get(session_id=session)
    assert row.started_at == NOW - dt.timedelta(days=1, hours=2)
    assert (row.device_type, row.country, row.reached_step) == ("mobile", "DE", 5)
    assert (row.events, row.revenue) == (5, Decimal("12.50"))
    metrics = {
        (m.bucket.date(), m.device_type, m.reached_step): m.sessions
        for m in SessionMetricDaily.objects.all()
        if m.sessions
    }
    assert metrics == {(row.started_at.date(), "mobile", 5): 1}
    assert UserFirstSeen.objects.get(user_id="u1").first_seen == row.started_at


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_never_count_an_event_twice(require_postgres):
    """Two rollup runs at once: the watermark row lock serializes them, each event once."""
    for index in range(200):
        EventFactory(
            timestamp=NOW - dt.timedelta(minutes=index),
            received_at=NOW - dt.timedelta(seconds=index),
        )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            rollups_advance(now=LATER, batch=25)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    total = sum(EventMetricDaily.objects.values_list("events", flat=True))
    assert total == 200
    assert connection.vendor == "postgresql"
