"""The full rebuild refolds in slices of receipt time (ADR 0035), the periodic fold in batches
of fold order (txid, id). On the same events (sessions crossing slices, events received days
late, anonymous visits, people linked by identify and alias) both must leave every rollup row
equal, user bitmaps and first-seen rows included (as sets of user ids: keys are assigned in
fold order), and every dashboard number equal to raw SQL."""

from __future__ import annotations

import datetime as dt

import pytest

from events.models import Event
from reports.models import RollupWatermark
from reports.selectors.watermark import WATERMARK_NAME, watermark_get
from reports.services.rollups import rollups_advance, rollups_rebuild
from tests.dashboard_reference import (
    NOW,
    assert_dashboard_matches_raw,
    filter_sets,
    generate_events,
    load,
)
from tests.data_quality.test_people_numbers import _anonymous_copies, _link_people
from tests.factories import EventFactory
from tests.rollup_scaffold import table_state

AFTER = NOW + dt.timedelta(minutes=5)


@pytest.fixture
def linked_events(require_postgres, db) -> None:
    events = generate_events()
    load(events)
    Event.objects.bulk_create(_anonymous_copies(events))
    _link_people()


@pytest.mark.parametrize("slice_events", [37, 400, 1_000_000], ids=["tiny", "small", "one"])
def test_refold_in_slices_equals_the_incremental_fold(linked_events, slice_events):
    """Folded in batches of 97 in fold order, then rebuilt in slices of receipt time: the same
    rows, the same count under the watermark, and the dashboards equal raw SQL."""
    rollups_advance(now=AFTER, batch=97, max_seconds=120)
    folded, mark = table_state(), watermark_get()
    run = rollups_rebuild(now=AFTER, batch=slice_events)
    counted = RollupWatermark.objects.get(name=WATERMARK_NAME).events_rolled_up
    assert run.events == counted == Event.objects.count()
    if slice_events < 100:
        assert run.batches > 20  # the slices really cut the events, sessions with them
    assert table_state() == folded
    rebuilt = watermark_get()
    assert (rebuilt.txid, rebuilt.pk) == (mark.txid, mark.pk)
    for f in filter_sets():
        assert_dashboard_matches_raw(f)


def test_refold_leaves_what_arrives_after_its_bound_to_the_next_fold(linked_events):
    """Events received after the horizon (`now` minus the safety lag) stay out of the refold,
    as they stay out of a fold batch, and the next fold takes them."""
    EventFactory(timestamp=NOW, received_at=AFTER + dt.timedelta(hours=1))
    run = rollups_rebuild(now=AFTER, batch=400)
    assert run.events == Event.objects.count() - 1
    assert rollups_advance(now=AFTER + dt.timedelta(hours=2)).events >= 1
    folded = table_state()
    rollups_rebuild(now=AFTER + dt.timedelta(hours=2), batch=400)
    assert table_state() == folded
