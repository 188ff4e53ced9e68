"""Dashboard numbers stay equal to raw events while the raw tail after the watermark changes
between reads: the tail's summary is reused, extended with new events, rebuilt when an event
commits out of id order, and started again when the watermark moves (reports.selectors).

The reference is the raw-SQL comparison of tests/dashboard_reference.py.
"""

from __future__ import annotations

import datetime as dt
import importlib
import random
import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache

from analytics_site.sql import rollup_safety_lag
from events.models import Event
from reports.filters import filters_from_query
from reports.models import SessionRollup, UserFirstSeen
from reports.models.grains import USER_BITMAP
from reports.selectors import pages, tail_summary
from reports.selectors.tail import read_snapshot
from reports.selectors.tail_summary import tail_summary_share
from reports.selectors.watermark import events_after_watermark, watermark_get
from reports.services.rollups import rollups_advance, rollups_advance_batch
from tests.dashboard_reference import NOW, assert_dashboard_matches_raw, generate_events, load

pytestmark = pytest.mark.postgres

RECEIVED = NOW - dt.timedelta(seconds=30)  # after any watermark the tests fold to


def _filters():
    return [
        filters_from_query(query, now=NOW)
        for query in (
            {"preset": "24h"},
            {"preset": "7d"},
            {"preset": "30d", "device": "mobile"},
            {"start": "2026-02-20", "end": "2026-03-05", "country": "BR"},
        )
    ]


def _assert_all_match() -> None:
    for f in _filters():
        assert_dashboard_matches_raw(f)


def _event(session: str, user: str, ts: dt.datetime, event_type: str, **fields) -> Event:
    values = {
        "event_id": uuid.uuid4(),
        "event_type": event_type,
        "timestamp": ts,
        "client_timestamp": ts,
        "received_at": RECEIVED,
        "user_id": user,
        "session_id": session,
        "device_type": "mobile",
        "country": "BR",
        "product_id": "sku_3" if event_type in ("product_view", "add_to_cart", "purchase") else "",
        "category": "books" if event_type in ("product_view", "add_to_cart", "purchase") else "",
        "revenue": Decimal("12.50") if event_type == "purchase" else None,
        "currency": "USD" if event_type == "purchase" else "",
        "order_id": f"o_{uuid.uuid4().hex[:8]}" if event_type == "purchase" else "",
    }
    values.update(fields)
    return Event(**values)


@pytest.fixture
def partly_rolled_up(require_postgres, db):
    load(generate_events())
    # One batch of 60% of the events in fold order (ADR 0011): the rest is the raw tail.
    rollups_advance_batch(now=NOW + dt.timedelta(minutes=5), batch=Event.objects.count() * 3 // 5)
    assert events_after_watermark(watermark_get()).exists()


@pytest.fixture
def tail_loads(monkeypatch):
    """The `after_id` of every tail load, to tell an extended summary from a rebuilt one."""
    calls: list[int] = []
    load_rows = tail_summary.tail_rows_load

    def spy(limit: int, after_id: int = 0):
        calls.append(after_id)
        return load_rows(limit, after_id)

    monkeypatch.setattr(tail_summary, "tail_rows_load", spy)
    return calls


def test_numbers_stay_exact_as_the_tail_grows_under_one_watermark(partly_rolled_up, tail_loads):
    """New tail events are folded into the summary of the earlier reads (only they are loaded),
    and every number still equals raw events: late events, sessions that started before the
    watermark (continued, or moved earlier by a late event to another device and country),
    users first seen in the tail, rolled-up users whose tail event is older than their first
    rolled-up one, and resent duplicates."""
    _assert_all_match()
    assert tail_loads and tail_loads[-1] == 0
    rng = random.Random(5)
    rolled = list(
        SessionRollup.objects.filter(started_at__gte=NOW - dt.timedelta(days=12)).order_by("id")
    )
    continued, moved = rng.sample(rolled, 2)
    known = UserFirstSeen.objects.filter(first_seen__gte=NOW - dt.timedelta(days=5)).first()
    assert known is not None
    batches = [
        [  # a rolled-up session goes on to a purchase
            _event(continued.session_id, continued.user_id, continued.ended_at, "add_to_cart"),
            _event(continued.session_id, continued.user_id, continued.ended_at, "purchase"),
        ],
        [  # a late event starts a rolled-up session earlier, on another device and country
            _event(
                moved.session_id,
                moved.user_id,
                moved.started_at - dt.timedelta(hours=30),
                "page_view",
                device_type="tablet" if moved.device_type != "tablet" else "desktop",
                country="FR" if moved.country != "FR" else "US",
            ),
        ],
        [  # a user first seen in the tail, one event late and one now
            _event("s_new", "u_new", NOW - dt.timedelta(days=9), "page_view"),
            _event("s_new", "u_new", NOW - dt.timedelta(minutes=3), "product_view"),
        ],
        [  # a rolled-up user's event from before its rolled-up first event: no longer new
            _event("s_old", known.user_id, known.first_seen - dt.timedelta(days=6), "search"),
        ],
    ]
    for batch in batches:
        Event.objects.bulk_create(batch)
        resent = [_event(e.session_id, e.user_id, e.timestamp, e.event_type) for e in batch]
        for copy, original in zip(resent, batch, strict=True):
            copy.event_id = original.event_id
        Event.objects.bulk_create(resent, ignore_conflicts=True)  # duplicates: not stored
        loads_before = len(tail_loads)
        _assert_all_match()
        assert tail_loads[loads_before:][:1] != [0], "the summary should be extended"


def test_an_event_committed_out_of_id_order_is_not_missed(partly_rolled_up):
    """An event can commit after one with a higher id: the events above the summary's newest id
    do not account for the whole growth of the tail, so the summary starts again."""
    newest = Event.objects.order_by("-id").values_list("id", flat=True).first()
    Event.objects.bulk_create(
        [
            _event("s_gap", "u_gap", NOW - dt.timedelta(hours=2), "page_view", id=newest + 10),
            _event("s_gap", "u_gap", NOW - dt.timedelta(hours=1), "purchase", id=newest + 30),
        ]
    )
    _assert_all_match()
    Event.objects.bulk_create(
        [
            _event("s_gap", "u_gap", NOW - dt.timedelta(hours=3), "add_to_cart", id=newest + 20),
            _event("s_gap", "u_gap", NOW - dt.timedelta(hours=1), "search", id=newest + 40),
        ]
    )
    _assert_all_match()
    Event.objects.bulk_create(  # only a lower id: the newest id is unchanged
        [_event("s_gap", "u_gap", NOW - dt.timedelta(days=3), "page_view", id=newest + 25)]
    )
    _assert_all_match()


def test_numbers_stay_exact_when_the_watermark_moves_between_reads(partly_rolled_up):
    """A user first seen in the tail gets a key when a fold takes part of its events; the next
    read must not take it for a user the rollup does not know (it would count twice)."""
    Event.objects.bulk_create(
        [
            _event("s_fold", "u_fold", NOW - dt.timedelta(days=2), "page_view"),
            _event(
                "s_fold",
                "u_fold",
                NOW - dt.timedelta(minutes=20),
                "purchase",
                received_at=NOW + dt.timedelta(seconds=20),
            ),
        ]
    )
    _assert_all_match()
    # Folds everything stored before the purchase (fold order: ADR 0011), not the purchase.
    rollups_advance(now=NOW + rollup_safety_lag() + dt.timedelta(seconds=1))
    assert UserFirstSeen.objects.filter(user_id="u_fold").exists()
    assert events_after_watermark(watermark_get()).filter(user_id="u_fold")
    _assert_all_match()


def test_a_tail_too_big_to_hold_is_aggregated_in_sql(partly_rolled_up, settings):
    """Over ROLLUP_TAIL_IN_MEMORY_MAX events the tail is not summarized; numbers come from SQL
    over the tail and stay exact, and a summary is used again once the tail is small."""
    tail_size = events_after_watermark(watermark_get()).count()
    settings.ROLLUP_TAIL_IN_MEMORY_MAX = tail_size - 1
    _assert_all_match()
    settings.ROLLUP_TAIL_IN_MEMORY_MAX = tail_size
    _assert_all_match()


def test_a_summary_shared_after_a_fold_serves_another_process(partly_rolled_up, tail_loads):
    """The rollup task's cache warm shares the tail summary: a process that never read the
    tail extends the shared one with the events received since, and numbers stay exact."""
    pages.dashboard_cache_warm(("7d",), now=NOW)
    tail_summary.tail_summaries_clear()  # another process: nothing of its own
    Event.objects.bulk_create(
        [
            _event("s_shared", "u_shared", NOW - dt.timedelta(minutes=9), "page_view"),
            _event("s_shared", "u_shared", NOW - dt.timedelta(days=8), "purchase"),
        ]
    )
    loads_before = len(tail_loads)
    _assert_all_match()
    assert tail_loads[loads_before] > 0, "the shared summary should be extended"


def test_a_shared_summary_put_back_after_a_cache_flush_is_extended(partly_rolled_up, tail_loads):
    """`tail_summary_share` returns what it shared; `summary_to_cache` shares it again (the
    dashboard benchmark's "after fold" reads), and a fresh process extends it exactly."""
    with read_snapshot():
        shared = tail_summary_share()
    assert shared is not None and shared.count > 0
    cache.clear()
    tail_summary.tail_summaries_clear()
    tail_summary.summary_to_cache(shared)
    Event.objects.bulk_create(
        [_event("s_put_back", "u_put_back", NOW - dt.timedelta(minutes=3), "add_to_cart")]
    )
    loads_before = len(tail_loads)
    _assert_all_match()
    assert tail_loads[loads_before] == shared.max_id, "the put-back summary should be extended"


@pytest.fixture
def bitmap_reads(monkeypatch):
    """The model of every user-bitmap read of the users reader."""
    users_reader = importlib.import_module("reports.selectors.users")
    models: list[type] = []
    read = users_reader.bitmaps_read

    def spy(rows):
        models.append(rows.model)
        return read(rows)

    monkeypatch.setattr(users_reader, "bitmaps_read", spy)
    return models


def test_user_unions_are_cached_per_rollup_state(partly_rolled_up, bitmap_reads):
    """A period's unions of active users are cached under the rollup state: a second read of
    the state takes them from the cache (no bitmap row is read) and stays exact, with the tail
    on top; once a fold moves the watermark, they are read again."""
    active_models = set(USER_BITMAP.values())
    _assert_all_match()
    assert active_models & set(bitmap_reads)
    bitmap_reads.clear()
    _assert_all_match()
    assert not active_models & set(bitmap_reads), "the unions should come from the cache"
    Event.objects.bulk_create(
        [_event("s_union", "u_union", NOW - dt.timedelta(hours=5), "page_view")]
    )
    rollups_advance(now=RECEIVED + rollup_safety_lag() + dt.timedelta(seconds=1))
    _assert_all_match()
    assert active_models & set(bitmap_reads), "a fold should retire the cached unions"
