"""Rebuilding the rollups: the command (all, or from a date), planner statistics after a
rebuild, and events replayed from quarantine behind the watermark (folded at once, equal to a
rebuild)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from events.services import IngestSource, event_batch_ingest
from quality.services import replay
from quality.services.rules import rules_set_enabled
from reports.filters import filters_from_query
from reports.models import EventMetricDaily
from reports.models.grains import ALL_MODELS
from reports.selectors import pages
from reports.services.rollups import rollups_advance, rollups_rebuild
from tests.factories import EventFactory, QualityRuleFactory, event_payload, purchase_payload
from tests.rollup_scaffold import (
    LATER,
    NOW,
    assert_event_totals_exact,
    assert_session_totals_exact,
    table_state,
)


def test_rebuild_command_all_and_since(require_postgres, db):
    """`rebuild_rollups` rebuilds everything or from a date, with the same result."""
    for day in range(5):
        EventFactory(
            timestamp=NOW - dt.timedelta(days=day), received_at=NOW - dt.timedelta(hours=1)
        )
    call_command("rebuild_rollups", "--no-safety-lag")
    state = table_state()
    EventMetricDaily.objects.update(events=999)  # corrupt, then repair from a date on
    call_command("rebuild_rollups", "--since", "2026-01-01", "--no-safety-lag")
    assert table_state() == state
    with pytest.raises(CommandError, match="--since"):
        call_command("rebuild_rollups", "--since", "last week")


def test_rebuild_leaves_planner_statistics_on_every_rollup_table(require_postgres, db):
    """A rebuild empties and refills the rollups in bulk; it analyzes them, so the planner does
    not guess a 30-day read returns a few hundred rows (and sort or spill accordingly)."""
    for index in range(6):
        EventFactory(
            event_type="product_view",
            product_id=f"sku_{index}",
            timestamp=NOW - dt.timedelta(days=index),
            received_at=NOW,
        )
    rollups_rebuild(now=LATER)
    with connection.cursor() as cursor:
        for model in ALL_MODELS:
            table = model._meta.db_table
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
            assert cursor.fetchone()[0] == model.objects.count(), table


@pytest.mark.django_db
def test_replayed_events_behind_the_watermark_are_folded_and_read():
    """A replay stores events at their original receipt time, which the watermark has passed
    in time but not in fold order (a new transaction, ADR 0011): they are read from the raw
    tail at once and folded by the next advance, so every number equals a rebuild."""
    rule = QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )
    held = purchase_payload(price=150, quantity=1, revenue=150, user_id="buyer", session_id="s1")
    outcomes = event_batch_ingest([held, event_payload()], source=IngestSource(ip="10.0.0.1"))
    assert [o.status for o in outcomes] == ["rejected", "accepted"]
    event_batch_ingest([event_payload(session_id="s2")], source=IngestSource(ip="10.0.0.1"))
    later = timezone.now() + dt.timedelta(minutes=1)
    assert rollups_advance(now=later).events == 2  # watermark past the rejected one
    f = filters_from_query({"preset": "7d"})
    kpis = pages.overview(f)["kpis"]
    assert (kpis["events"]["value"], kpis["revenue"]["value"], kpis["users"]["value"]) == (2, 0, 1)

    rules_set_enabled([rule.pk], False)
    assert replay.quarantine_replay([outcomes[0].rejected_id]).accepted == 1
    kpis = pages.overview(f)["kpis"]
    assert (kpis["events"]["value"], kpis["revenue"]["value"], kpis["users"]["value"]) == (
        3,
        150,
        2,
    )
    assert rollups_advance(now=later).events == 1  # the replayed event, from the tail
    assert rollups_advance(now=later).events == 0
    assert_event_totals_exact()
    assert_session_totals_exact()
    folded = table_state()
    rollups_rebuild(now=later)
    assert table_state() == folded
