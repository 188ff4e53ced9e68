"""Expectations on generated sample data once stored (no stored rules: the schema layer only).

These are the properties dashboards and quality checks rely on: purchases carry order ids and
consistent revenue, the pass rate is about 1 - bad_rate, every quarantined event says which
field was wrong, nothing is stored twice, and the funnel narrows step by step."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from events import sample_data as gen
from events.models import Event, RejectedEvent
from events.sample_data.load import LoadSummary, sample_data_load

pytestmark = pytest.mark.django_db

END = dt.datetime(2026, 2, 1, 18, 0, tzinfo=dt.UTC)
CONFIG = gen.SampleConfig(events=20_000, end=END, seed=2024, bad_rate=0.02, late_rate=0.005)


@pytest.fixture
def stored(require_postgres) -> LoadSummary:
    return sample_data_load(CONFIG, workers=1)


def _scalar(sql: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_every_purchase_has_an_order_id_revenue_and_currency(stored):
    purchases = Event.objects.filter(event_type="purchase")
    assert purchases.count() > 150
    assert not purchases.filter(order_id="").exists()
    assert not purchases.filter(revenue__isnull=True).exists()
    assert not purchases.filter(revenue__lte=0).exists()
    assert set(purchases.values_list("currency", flat=True)) == {"USD"}
    duplicated_orders = _scalar(
        "SELECT count(*) FROM (SELECT order_id FROM events_event WHERE event_type = 'purchase' "
        "GROUP BY order_id HAVING count(*) > 1) t"
    )
    assert duplicated_orders == 0


def test_revenue_equals_price_times_quantity_or_the_sum_of_items(stored):
    mismatched = _scalar(
        "SELECT count(*) FROM events_event WHERE event_type = 'purchase' AND ("
        " (price IS NOT NULL AND revenue <> price * quantity) OR"
        " (price IS NULL AND revenue <> (SELECT sum((item->>'price')::numeric"
        "   * (item->>'quantity')::int) FROM jsonb_array_elements(properties->'items') item)))"
    )
    assert mismatched == 0


def test_pass_rate_is_about_one_minus_bad_rate(stored):
    """Stored vs refused, counting only events sent once (duplicates are neither)."""
    accepted, rejected = Event.objects.count(), RejectedEvent.objects.count()
    pass_rate = accepted / (accepted + rejected)
    # rule_only kinds pass when no stored rule exists: they are about a quarter of bad events.
    assert 1 - CONFIG.bad_rate <= pass_rate <= 1 - CONFIG.bad_rate * 0.6
    assert accepted == stored.accepted
    assert rejected == stored.rejected


def test_every_rejected_event_names_a_field_and_keeps_its_payload(stored):
    rejected = list(RejectedEvent.objects.all())
    assert len(rejected) > 200
    for row in rejected:
        assert row.reasons
        assert all(reason["field"] and reason["rule"] for reason in row.reasons)
        assert isinstance(row.payload, dict)
        assert row.received_at <= END


def test_nothing_is_stored_twice_and_nothing_good_is_in_the_future(stored):
    assert stored.duplicates > 50
    assert _scalar("SELECT count(*) - count(DISTINCT event_id) FROM events_event") == 0
    # Every stored event except the stale rule_only ones lies in the generated window.
    window_start = END - dt.timedelta(days=CONFIG.days)
    outside = Event.objects.exclude(timestamp__range=(window_start, END)).count()
    assert outside == stored.accepted_bad_by_kind.get("stale_timestamp", 0)
    assert not Event.objects.filter(received_at__gt=END).exists()


def test_some_events_arrive_hours_late(stored):
    late = _scalar(
        "SELECT count(*) FROM events_event WHERE received_at - timestamp >= interval '1 hour'"
    )
    # The stale rule_only events (accepted with no stored rule) are "late" by years.
    assert late == stored.late + stored.accepted_bad_by_kind.get("stale_timestamp", 0)
    assert late == pytest.approx(CONFIG.events * CONFIG.late_rate, rel=0.35)


def test_the_funnel_narrows_step_by_step(stored):
    sessions = [
        _scalar(
            f"SELECT count(DISTINCT session_id) FROM events_event WHERE event_type = '{step}'"  # noqa: S608 - constants
        )
        for step in gen.FUNNEL_STEPS
    ]
    assert sessions == sorted(sessions, reverse=True)
    assert sessions[-1] / sessions[0] == pytest.approx(0.04, abs=0.02)


def test_users_come_back(stored):
    returning = _scalar(
        "SELECT avg((n > 1)::int) FROM (SELECT user_id, count(DISTINCT session_id) n "
        "FROM events_event GROUP BY user_id) t"
    )
    assert 0.3 <= returning <= 0.9
