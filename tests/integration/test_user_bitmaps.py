"""User bitmaps (reports.services.user_bitmaps) on PostgreSQL and SQLite: distinct and new
users equal a plain Python count over raw events in every rollup state, and the fold keeps keys
and first-seen buckets right through late events, duplicates, refolds and rebuilds."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection

from reports.filters import DashboardFilters, filters_from_query
from reports.models import (
    FirstSeenBitmapDaily,
    FirstSeenBitmapHourly,
    UserBitmapDaily,
    UserBitmapHourly,
    UserFirstSeen,
)
from reports.selectors import pages
from reports.selectors.user_bitmaps import bitmap_load
from reports.selectors.watermark import events_after_watermark, rollup_state, watermark_get
from reports.services.rollups import rollups_rebuild
from tests.factories import EventFactory
from tests.rollup_scaffold import LATER, NOW, advance
from tests.user_bitmaps_scaffold import (
    MIDNIGHT,
    assert_users_match_raw,
    dataset,
    filter_sets,
)


def key_of(user_id: str) -> int:
    return UserFirstSeen.objects.get(user_id=user_id).id


def keys_in(model, bucket: dt.datetime, **filters) -> set[int]:
    keys: set[int] = set()
    for data in model.objects.filter(bucket=bucket, **filters).values_list("users", flat=True):
        keys |= set(bitmap_load(data))
    return keys


STATES = ("nothing rolled up", "partly rolled up", "rolled up in small batches", "rebuilt since")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("tail_in_memory", [True, False], ids=["tail-in-python", "tail-in-sql"])
def test_users_equal_raw_in_every_rollup_state(db, settings, state, tail_in_memory):
    """Distinct users (total, per device, per country, filtered) and new vs returning users equal
    raw events whether they come from bitmaps, from the raw tail, or both (tail users already in
    the rollup are not counted twice; late tail events reclassify new users)."""
    settings.ROLLUP_TAIL_IN_MEMORY_MAX = 50_000 if tail_in_memory else 0
    dataset()
    if state == "partly rolled up":
        advance(now=NOW - dt.timedelta(days=3))
        assert events_after_watermark(watermark_get()).exists()
    elif state == "rolled up in small batches":
        advance(batch=17)
    elif state == "rebuilt since":
        advance()
        rollups_rebuild(since=MIDNIGHT.date() - dt.timedelta(days=1), now=LATER)
    for f in filter_sets():
        assert_users_match_raw(f)


def test_late_event_moves_the_first_seen_key_to_its_earlier_bucket(db):
    """A late event older than a user's first event moves the user's key (unchanged) from the
    first-seen bitmaps of the old hour and day to those of the late event; the user turns from
    new into returning for the later day."""
    EventFactory(user_id="u1", timestamp=NOW - dt.timedelta(hours=2), received_at=NOW)
    advance()
    key = key_of("u1")
    today, hour = NOW.replace(hour=0), NOW - dt.timedelta(hours=2)
    assert keys_in(FirstSeenBitmapDaily, today) == {key}
    assert keys_in(FirstSeenBitmapHourly, hour) == {key}
    today_only = DashboardFilters(today, today + dt.timedelta(days=1), "custom")
    assert pages.audience(today_only)["new_vs_returning"] == {"new": 1, "returning": 0}

    late = NOW - dt.timedelta(days=3, minutes=10)
    EventFactory(user_id="u1", timestamp=late, received_at=NOW + dt.timedelta(minutes=1))
    assert pages.audience(today_only)["new_vs_returning"] == {"new": 0, "returning": 1}
    advance(now=LATER + dt.timedelta(minutes=1))
    assert key_of("u1") == key
    assert UserFirstSeen.objects.get(user_id="u1").first_seen == late
    assert keys_in(FirstSeenBitmapDaily, today) == set()
    assert keys_in(FirstSeenBitmapHourly, hour) == set()
    assert keys_in(FirstSeenBitmapDaily, late.replace(hour=0, minute=0)) == {key}
    assert keys_in(FirstSeenBitmapHourly, late.replace(minute=0)) == {key}
    assert pages.audience(today_only)["new_vs_returning"] == {"new": 0, "returning": 1}


def test_keys_are_given_once_per_user_and_stay_dense(db):
    """Known users keep their key across folds and new ones get the next keys: folding the same
    users again does not spend keys (bitmaps stay small)."""
    for round_ in range(4):
        for user in range(10):
            EventFactory(
                user_id=f"u{user}",
                timestamp=NOW - dt.timedelta(minutes=round_ * 10 + user),
                received_at=NOW + dt.timedelta(seconds=round_),
            )
        advance(now=LATER + dt.timedelta(seconds=round_))
    keys = list(UserFirstSeen.objects.values_list("id", flat=True))
    assert len(keys) == 10
    assert max(keys) - min(keys) == 9
    hour = UserBitmapHourly.objects.filter(device_type="desktop", country="US")
    assert set().union(*(bitmap_load(data) for data in hour.values_list("users", flat=True))) == (
        set(keys)
    )


def test_active_bitmaps_follow_utc_buckets_device_and_country(db):
    """A user is in the bitmap of each UTC hour and day and device x country it was active in:
    23:59:59.999999 belongs to the day before midnight."""
    EventFactory(
        user_id="u1",
        timestamp=MIDNIGHT - dt.timedelta(microseconds=1),
        received_at=NOW,
        device_type="mobile",
        country="DE",
    )
    EventFactory(user_id="u1", timestamp=MIDNIGHT, received_at=NOW, device_type="desktop")
    advance()
    key = key_of("u1")
    day_before = MIDNIGHT - dt.timedelta(days=1)
    assert keys_in(UserBitmapDaily, day_before, device_type="mobile", country="DE") == {key}
    assert keys_in(UserBitmapDaily, MIDNIGHT, device_type="mobile") == set()
    assert keys_in(UserBitmapDaily, MIDNIGHT, device_type="desktop", country="US") == {key}
    assert keys_in(UserBitmapHourly, MIDNIGHT - dt.timedelta(hours=1)) == {key}
    assert keys_in(UserBitmapHourly, MIDNIGHT) == {key}


def test_tail_user_on_a_new_device_counts_there_once(db):
    """A rolled-up user seen again in the raw tail on another device counts once in total and
    once for each device; a brand-new tail user counts everywhere."""
    EventFactory(user_id="u1", timestamp=NOW - dt.timedelta(hours=1), received_at=NOW)
    advance()
    later = NOW + dt.timedelta(minutes=1)
    EventFactory(user_id="u1", timestamp=NOW - dt.timedelta(minutes=30), received_at=later)
    EventFactory(
        user_id="u1",
        timestamp=NOW - dt.timedelta(minutes=20),
        received_at=later,
        device_type="mobile",
    )
    EventFactory(
        user_id="u2",
        timestamp=NOW - dt.timedelta(minutes=10),
        received_at=later,
        device_type="mobile",
    )
    f = filters_from_query({"preset": "24h"}, now=NOW)
    assert pages.overview(f)["kpis"]["users"]["value"] == 2
    devices = {row["device_type"]: row["users"] for row in pages.audience(f)["devices"]}
    assert devices == {"desktop": 1, "mobile": 2}
    assert pages.audience(f)["new_vs_returning"] == {"new": 2, "returning": 0}
    assert_users_match_raw(f)


def test_rebuild_since_keeps_keys_and_equals_a_full_rebuild(db):
    """A partial rebuild keeps every user's key and gives the same bitmaps as a full one."""
    dataset(seed=5)
    advance()
    keys = dict(UserFirstSeen.objects.values_list("user_id", "id"))
    UserBitmapDaily.objects.all().delete()  # damage, then repair from a date on
    FirstSeenBitmapHourly.objects.filter(bucket__gte=MIDNIGHT).delete()
    rollups_rebuild(since=dt.date(2026, 2, 1), now=LATER)
    assert dict(UserFirstSeen.objects.values_list("user_id", "id")) == keys

    def by_user(model) -> list[tuple]:
        names = dict(UserFirstSeen.objects.values_list("id", "user_id"))
        fields = [
            f.attname for f in model._meta.concrete_fields if f.attname not in ("id", "users")
        ]
        rows = []
        for *key, data in model.objects.values_list(*fields, "users"):
            users = sorted(names[k] for k in bitmap_load(data))
            if users:
                rows.append((*key, users))
        return sorted(rows)

    models = (UserBitmapHourly, UserBitmapDaily, FirstSeenBitmapHourly, FirstSeenBitmapDaily)
    partial = {model: by_user(model) for model in models}
    rollups_rebuild(now=LATER)
    assert {model: by_user(model) for model in models} == partial
    assert uuid.UUID(str(rollup_state()[0]))


@pytest.mark.postgres
def test_tail_user_key_probes_use_a_hash_index(require_postgres, db):
    """Migration 0008: user keys of the raw tail are probed through a hash index on user_id
    (cheaper than descending the unique B-tree), and the lookup returns each known key."""

    from reports.selectors.tail_summary import user_keys_lookup

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = %s",
            [UserFirstSeen._meta.db_table, "reports_userfirstseen_user_id_hash"],
        )
        (definition,) = cursor.fetchone()
    assert "USING hash (user_id)" in definition
    known = [
        UserFirstSeen.objects.create(
            user_id=f"u_hash_{n}", first_seen=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        )
        for n in range(3)
    ]
    found = user_keys_lookup([*(user.user_id for user in known), "u_hash_unknown"])
    assert found == {user.user_id: user.id for user in known}
