"""Session totals (per start bucket and furthest step, without device and country), which the
unfiltered unsplit session numbers read: exact after folds, late events that move a session,
duplicates, rebuilds and their migration."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal
from types import SimpleNamespace

from django.core.cache import cache
from django.db import connection

from events.models import Event
from reports.filters import DashboardFilters, filters_from_query
from reports.models import SessionRollup
from reports.models.grains import FUNNEL_STEPS, GRAINS, SESSION_METRIC, SESSION_TOTAL
from reports.selectors import pages
from reports.services.rollups import rollups_rebuild
from tests.factories import EventFactory
from tests.rollup_scaffold import (
    LATER,
    NOW,
    advance,
    assert_session_totals_exact,
    event_resend,
    session_metrics_summed,
    session_totals,
)


def _session_totals_dataset() -> None:
    """Sessions of one to five events over several hours and days, devices and countries, with
    purchases and ties on received_at."""
    devices = [("mobile", "US"), ("desktop", "US"), ("mobile", "DE"), ("tablet", "FR")]
    for index in range(12):
        device, country = devices[index % 4]
        for offset, event_type in enumerate(FUNNEL_STEPS[: index % 5 + 1]):
            EventFactory(
                session_id=f"s{index}",
                user_id=f"u{index % 5}",
                event_type=event_type,
                revenue=Decimal("7.50") if event_type == "purchase" else None,
                device_type=device,
                country=country,
                timestamp=NOW - dt.timedelta(hours=9 * index, minutes=20 * offset),
                received_at=NOW - dt.timedelta(seconds=(index + offset) % 3),
            )


def _late_session_event(session: str, **fields) -> Event:
    """An event of an existing session received after everything else (a late event)."""
    values = {
        "session_id": session,
        "user_id": "late",
        "received_at": NOW + dt.timedelta(minutes=2),
        **fields,
    }
    return EventFactory(**values)


def test_session_totals_follow_folds_late_events_and_duplicates(db):
    """Unsplit unfiltered session numbers read the session totals: after folds in small
    batches, a late event that moves a session to an earlier bucket, another device and a
    further step, and a resent duplicate, they hold exactly the session metrics summed over
    device and country, and the sessions computed from raw events."""
    _session_totals_dataset()
    advance(batch=4)
    assert_session_totals_exact()
    moved = SessionRollup.objects.get(session_id="s3")
    assert moved.reached_step == 4
    late = _late_session_event(
        "s3",
        event_type="purchase",
        revenue=Decimal("19.99"),
        device_type="tablet",
        country="BR",
        timestamp=moved.started_at - dt.timedelta(days=2),
    )
    event_resend(late)
    old_day = moved.started_at.replace(hour=0, minute=0, second=0, microsecond=0)
    before = session_totals("day")
    assert advance(now=LATER + dt.timedelta(minutes=5)) == 1
    assert_session_totals_exact()
    after = session_totals("day")
    new_day = late.timestamp.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert after.get((old_day, 4), (0,))[0] == before[(old_day, 4)][0] - 1
    assert after[(new_day, 5)][0] == before.get((new_day, 5), (0,))[0] + 1


def test_session_totals_follow_a_partial_rebuild_and_are_repaired_by_a_full_one(db):
    """`rebuild_rollups --since` recomputes the sessions touched from that day on (one of them
    started before it and gets a late event after it) and keeps the totals exact; a full
    rebuild empties and refolds damaged totals."""
    _session_totals_dataset()
    advance()
    since = (NOW - dt.timedelta(days=2)).date()
    since_at = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    spanning = SessionRollup.objects.filter(started_at__lt=since_at).order_by("-started_at")[0]
    _late_session_event(
        spanning.session_id,
        event_type="purchase",
        revenue=Decimal("3.00"),
        timestamp=since_at + dt.timedelta(hours=1),
    )
    rollups_rebuild(since=since, now=LATER + dt.timedelta(minutes=5))
    assert_session_totals_exact()
    assert SessionRollup.objects.get(session_id=spanning.session_id).reached_step == 5
    for model in SESSION_TOTAL.values():
        model.objects.update(sessions=999, revenue=Decimal("1.00"))
        model.objects.create(bucket=NOW - dt.timedelta(days=400), reached_step=1, sessions=7)
    rollups_rebuild(now=LATER + dt.timedelta(minutes=5))
    assert_session_totals_exact()


def test_unsplit_unfiltered_session_reads_come_from_the_totals(db):
    """The overview's sessions and the funnel's unsplit steps read the session totals when no
    device or country filter is set; the funnel's splits and filtered views read the session
    metrics. Damaging the totals shows only in the unfiltered unsplit numbers, so the routing is
    real and the two reads are cached apart."""
    _session_totals_dataset()
    advance()
    everything = filters_from_query({"preset": "7d"}, now=NOW)
    mobile = filters_from_query({"preset": "7d", "device": "mobile"}, now=NOW)

    def sessions(f: DashboardFilters) -> int:
        return pages.overview(f)["kpis"]["sessions"]["value"]

    def funnel_reached(f: DashboardFilters, split_by: str | None = None) -> tuple:
        funnel = pages.funnel(f, split_by)
        steps = [step["sessions"] for step in funnel["steps"]]
        splits = {
            split["key"]: [step["sessions"] for step in split["steps"]]
            for split in funnel["splits"]
        }
        return steps, splits

    assert (sessions(everything), sessions(mobile)) == (12, 6)
    steps, splits = funnel_reached(everything, "device")
    assert steps[0] == 12 and sum(values[0] for values in splits.values()) == 12
    mobile_steps, _ = funnel_reached(mobile)
    SESSION_TOTAL["day"].objects.filter(reached_step=1).update(sessions=100)
    cache.clear()
    damaged = (
        SESSION_TOTAL["day"]
        .objects.filter(bucket__gte=everything.start, bucket__lt=everything.end, reached_step=1)
        .count()
    )
    assert damaged
    assert sessions(everything) == 12 + 99 * damaged
    damaged_steps, same_splits = funnel_reached(everything, "device")
    assert damaged_steps != steps and same_splits == splits
    assert sessions(mobile) == 6
    assert funnel_reached(mobile) == (mobile_steps, {})


def test_migration_fills_session_totals_from_existing_session_metrics(db):
    """Deploying migration 0012 fills the totals from the session metrics already folded
    (emptied rows included), so unfiltered session numbers stay exact without a rebuild."""
    migration = importlib.import_module("reports.migrations.0012_session_totals")
    _session_totals_dataset()
    advance(batch=4)
    _late_session_event(
        "s2", event_type="page_view", timestamp=NOW - dt.timedelta(days=5), device_type="mobile"
    )
    advance(now=LATER + dt.timedelta(minutes=5))
    assert SESSION_METRIC["day"].objects.filter(sessions=0).exists()
    expected = {grain: session_totals(grain) for grain in GRAINS}
    for model in SESSION_TOTAL.values():
        model.objects.all().delete()
    migration.session_totals_fill(None, SimpleNamespace(connection=connection))
    for grain in GRAINS:
        assert session_totals(grain) == expected[grain] == session_metrics_summed(grain)
    assert_session_totals_exact()
