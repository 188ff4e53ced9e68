"""The README's freshness KPI on the Data quality page: the share of events received within 5
minutes of their timestamp equals raw SQL before a fold, folded, with a tail, after replays and
after a rebuild; and the dashboards' rollup lag equals the first waiting event's age."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from events.models import Event
from quality import selectors
from quality.services import intake, replay
from quality.services.rules import rules_set_enabled
from reports.filters import filters_from_query
from reports.selectors import pages as report_selectors
from reports.services.rollups import rollups_advance
from tests.factories import EventFactory, QualityRuleFactory
from tests.integration.test_intake_rollups import (
    LATER,
    NOW,
    generated,
    quarantine_purchases,
    rollup_rows,
)

pytestmark = pytest.mark.django_db


def raw_freshness(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(events received in [start, end), of which within 5 minutes of their timestamp)."""
    if connection.vendor == "sqlite":  # no interval arithmetic to the microsecond in SQL
        rows = Event.objects.values_list("received_at", "timestamp")
        late = [r - t for r, t in rows if start <= r < end]
        return len(late), sum(delta <= dt.timedelta(minutes=5) for delta in late)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE received_at - timestamp <= interval "
            "'5 minutes') FROM events_event WHERE received_at >= %s AND received_at < %s",
            [start, end],
        )
        return tuple(cursor.fetchone())


def assert_freshness_equals_raw(now: dt.datetime = NOW) -> None:
    for start, end in (
        (now - dt.timedelta(days=4), now + dt.timedelta(hours=1)),
        (now - dt.timedelta(hours=5, minutes=17), now - dt.timedelta(minutes=3)),  # edges
        (now - dt.timedelta(minutes=40), now - dt.timedelta(minutes=35)),  # inside an hour
    ):
        read = selectors.data_freshness(start, end)
        accepted, fresh = raw_freshness(start, end)
        assert (read["accepted"], read["fresh"]) == (accepted, fresh), (start, end)
        assert read["late"] == accepted - fresh
        assert read["share"] == (fresh / accepted if accepted else None)


def boundary_events() -> None:
    """Exactly 5 minutes late is fresh, a microsecond more is not, early (client clock ahead)
    is fresh."""
    received = NOW - dt.timedelta(hours=2, minutes=10)
    for late in (
        dt.timedelta(minutes=5),
        dt.timedelta(minutes=5, microseconds=1),
        -dt.timedelta(minutes=3),
    ):
        EventFactory(received_at=received, timestamp=received - late)


def test_fresh_share_equals_raw_sql_unfolded_folded_with_a_tail_and_rebuilt():
    generated(seed=11, count=300, newest=NOW)
    boundary_events()
    assert_freshness_equals_raw()
    intake.intake_advance(now=LATER, batch=41)
    assert_freshness_equals_raw()
    generated(seed=12, count=40, newest=NOW + dt.timedelta(minutes=10), days=10 / 1440)
    assert_freshness_equals_raw(NOW + dt.timedelta(minutes=10))
    intake.intake_advance(now=NOW + dt.timedelta(minutes=30))
    assert_freshness_equals_raw(NOW + dt.timedelta(minutes=10))
    incremental = rollup_rows()
    intake.intake_rebuild(now=NOW + dt.timedelta(minutes=30))
    assert rollup_rows() == incremental
    read = selectors.data_freshness(NOW - dt.timedelta(hours=3), NOW - dt.timedelta(hours=2))
    assert read["late"] >= 1 and 0 < read["share"] < 1


def test_replayed_events_count_by_their_own_lateness():
    """Replayed purchases are stored at their original receipt time: folded before the replay
    or not, the fresh counts equal raw SQL and a rebuild finds the same rows."""
    rule = QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )
    generated(seed=13, count=80, newest=NOW)
    ids = quarantine_purchases(NOW - dt.timedelta(hours=3), 3)
    intake.intake_advance(now=LATER)
    rules_set_enabled([rule.pk], False)
    assert replay.quarantine_replay(ids).accepted == 3
    assert_freshness_equals_raw()
    intake.intake_advance(now=LATER)  # the replayed rows (new txids) were tail until now
    assert_freshness_equals_raw()
    before = rollup_rows()
    intake.intake_rebuild(now=LATER)
    assert rollup_rows() == before


def test_quality_page_shows_fresh_share_and_rollup_lag(require_postgres):
    """The page's period numbers equal raw SQL; the dashboards' lag is the age of the first
    event waiting to be folded (in fold order), and 0 once the rollups caught up."""
    generated(seed=14, count=120, newest=NOW)
    intake.intake_advance(now=LATER)
    filters = filters_from_query({"preset": "7d"}, now=NOW)
    page = report_selectors.quality_page(filters)
    accepted, fresh = raw_freshness(filters.start, filters.end)
    assert (page["data_freshness"]["accepted"], page["data_freshness"]["fresh"]) == (
        accepted,
        fresh,
    )
    lag = page["freshness"]["rollups"]
    with connection.cursor() as cursor:
        # Nothing folded yet: the first event waiting is the first in fold order (ADR 0011).
        cursor.execute("SELECT received_at FROM events_event ORDER BY txid, id LIMIT 1")
        oldest = cursor.fetchone()[0]
    assert lag["last_folded_received_at"] is None  # nothing folded into the reports rollups yet
    assert lag["lag_seconds"] == pytest.approx(
        (dt.datetime.now(dt.UTC) - oldest).total_seconds(), abs=60
    )
    rollups_advance(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    lag = report_selectors.quality_page(filters)["freshness"]["rollups"]
    assert lag["lag_seconds"] == 0 and lag["last_folded_received_at"] is not None
