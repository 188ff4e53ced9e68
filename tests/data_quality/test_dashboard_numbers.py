"""Every dashboard number equals the same number computed directly from raw events.

The reference (tests/dashboard_reference.py) is independent of reports/: plain SQL over
events_event and events_rejectedevent. It is compared with the selectors in every state the
rollups can be in: nothing rolled up (all raw tail), partly rolled up (rollups + tail), fully
rolled up, rolled up twice, and rebuilt from a date.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from analytics_site.sql import rollup_safety_lag
from events.models import Event
from quality import selectors as quality_selectors
from quality.services import intake
from reports.models.grains import ALL_MODELS
from reports.selectors.watermark import events_after_watermark, watermark_get
from reports.services.rollups import rollups_advance, rollups_rebuild
from tests.dashboard_reference import (
    NOW,
    assert_dashboard_matches_raw,
    filter_sets,
    generate_events,
    load,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def dataset(require_postgres, db) -> list[Event]:
    events = generate_events()
    load(events)
    return events


@pytest.mark.parametrize("tail_in_memory", [True, False], ids=["tail-in-python", "tail-in-sql"])
def test_numbers_equal_raw_with_nothing_rolled_up(dataset, settings, tail_in_memory):
    """With an empty rollup, every number comes from the raw tail and matches raw events."""
    settings.ROLLUP_TAIL_IN_MEMORY_MAX = 50_000 if tail_in_memory else 0
    for f in filter_sets():
        assert_dashboard_matches_raw(f)


@pytest.mark.parametrize("tail_in_memory", [True, False], ids=["tail-in-python", "tail-in-sql"])
def test_numbers_equal_raw_with_partial_rollup_and_raw_tail(dataset, settings, tail_in_memory):
    """Rollups up to a point in receive order plus the raw tail after it equal raw events,
    including late events in the tail whose sessions and users are already rolled up. Both tail
    paths: loaded into Python (small tails) and aggregated in SQL (big tails)."""
    settings.ROLLUP_TAIL_IN_MEMORY_MAX = 50_000 if tail_in_memory else 0
    rollups_advance(now=NOW - dt.timedelta(days=4), max_seconds=60)
    tail = events_after_watermark(watermark_get())
    assert tail.exists()
    late_in_tail = [e for e in tail if e.received_at - e.timestamp > dt.timedelta(hours=1)]
    assert late_in_tail, "the tail should hold late events"
    for f in filter_sets():
        assert_dashboard_matches_raw(f)


def test_numbers_equal_raw_after_full_rollup_in_small_batches(dataset):
    """Folding events in many small batches, late ones included, gives exact numbers; running
    the rollup again changes nothing. The quality notes' quarantine counts come from the
    intake rollups, folded here too (a replayed rejected event is not in quarantine)."""
    rollups_advance(now=NOW + dt.timedelta(minutes=5), batch=97, max_seconds=120)
    intake.intake_advance(now=NOW + dt.timedelta(minutes=5), max_seconds=120)
    assert quality_selectors.intake_marks().rejected.received_at is not None
    assert not events_after_watermark(watermark_get()).exists()
    for f in filter_sets():
        assert_dashboard_matches_raw(f)
    before = {model: sorted(model.objects.values_list()) for model in ALL_MODELS}
    assert rollups_advance(now=NOW + dt.timedelta(minutes=5)).events == 0
    after = {model: sorted(model.objects.values_list()) for model in ALL_MODELS}
    assert before == after


def test_numbers_equal_raw_after_rebuild_since_a_date(dataset):
    """A partial rebuild (from a date, keeping the watermark) recomputes those buckets and the
    sessions and users they touch, and the numbers still equal raw events."""
    rollups_advance(now=NOW + dt.timedelta(minutes=5), max_seconds=60)
    rollups_rebuild(since=dt.date(2026, 3, 3), now=NOW + dt.timedelta(minutes=5))
    for f in filter_sets():
        assert_dashboard_matches_raw(f)


def test_numbers_equal_raw_on_the_sample_data_generator(require_postgres, db):
    """The shop's own generator (late, duplicate and quarantined events included), partly
    rolled up with a raw tail: every number still equals raw events."""
    end = dt.datetime(2026, 3, 10, 14, tzinfo=dt.UTC)
    call_command(
        "generate_sample_data",
        events=4000,
        seed=11,
        days=10,
        end=end,
        late_rate=0.05,
        duplicate_rate=0.05,
        quiet=True,
    )
    assert Event.objects.filter(received_at__gte=NOW - dt.timedelta(days=40)).exists()
    late = Event.objects.raw(
        "SELECT id FROM events_event WHERE received_at - timestamp > interval '1 hour' LIMIT 1"
    )
    assert list(late), "the generator should have produced late events"
    middle = Event.objects.order_by("received_at").values_list("received_at", flat=True)[2000]
    rollups_advance(now=middle + rollup_safety_lag(), batch=700, max_seconds=60)
    assert events_after_watermark(watermark_get()).exists()
    for f in filter_sets():
        assert_dashboard_matches_raw(f)
