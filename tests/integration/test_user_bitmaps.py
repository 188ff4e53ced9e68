"""User bitmaps (reports.services.user_bitmaps) on PostgreSQL and SQLite: distinct and new
users equal a plain Python count over raw events in every rollup state, and the fold keeps keys
and first-seen buckets right through late events, duplicates, refolds and rebuilds."""

from __future__ import annotations

import datetime as dt
import importlib
import random
import uuid
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from events.models import Event
from reports.filters import DashboardFilters, filters_from_query
from reports.models import (
    FirstSeenBitmapDaily,
    FirstSeenBitmapHourly,
    UserBitmapDaily,
    UserBitmapHourly,
    UserBitmapWeekly,
    UserFirstSeen,
)
from reports.selectors import pages
from reports.selectors.user_bitmaps import bitmap_load
from reports.selectors.watermark import events_after_watermark, rollup_state, watermark_get
from reports.services.rollups import rollups_rebuild
from tests.factories import EventFactory
from tests.rollup_scaffold import LATER, NOW, advance, event_resend

MIDNIGHT = dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
DEVICES = ("desktop", "mobile", "tablet")
COUNTRIES = ("US", "DE", "FR")


def key_of(user_id: str) -> int:
    return UserFirstSeen.objects.get(user_id=user_id).id


def keys_in(model, bucket: dt.datetime, **filters) -> set[int]:
    keys: set[int] = set()
    for data in model.objects.filter(bucket=bucket, **filters).values_list("users", flat=True):
        keys |= set(bitmap_load(data))
    return keys


# ---------------------------------------------------------------------------------------------
# Reference: Python over raw events.


def _in(event: Event, f: DashboardFilters) -> bool:
    return (
        f.start <= event.timestamp < f.end
        and (not f.device or event.device_type == f.device)
        and (not f.country or event.country == f.country)
    )


def assert_users_match_raw(f: DashboardFilters) -> None:
    events = list(Event.objects.all())
    first: dict[str, dt.datetime] = {}
    for event in events:
        first[event.user_id] = min(first.get(event.user_id, event.timestamp), event.timestamp)
    overview = pages.overview(f)
    for label, period in (("value", f), ("previous", f.previous())):
        expected = len({e.user_id for e in events if _in(e, period)})
        assert overview["kpis"]["users"][label] == expected, (label, f)
    audience = pages.audience(f)
    for section, field in (("devices", "device_type"), ("countries", "country")):
        expected: dict[str, set[str]] = {}
        for event in events:
            if _in(event, f):
                expected.setdefault(getattr(event, field), set()).add(event.user_id)
        got = {row[field]: row["users"] for row in audience[section]}
        assert got == {key: len(users) for key, users in expected.items()}, (section, f)
    active = {e.user_id for e in events if _in(e, f)}
    new = sum(1 for user_id in active if first[user_id] >= f.start)
    assert audience["new_vs_returning"] == {"new": new, "returning": len(active) - new}, f


def filter_sets() -> list[DashboardFilters]:
    day = DashboardFilters(MIDNIGHT, MIDNIGHT + dt.timedelta(days=1), "custom")
    return [
        filters_from_query({}, now=NOW),
        filters_from_query({"preset": "24h"}, now=NOW),
        filters_from_query({"preset": "30d", "device": "mobile"}, now=NOW),
        filters_from_query({"preset": "7d", "country": "DE", "device": "desktop"}, now=NOW),
        day,
        DashboardFilters(MIDNIGHT - dt.timedelta(hours=1), MIDNIGHT + dt.timedelta(hours=1), "c"),
    ]


def dataset(seed: int = 3, days: int = 12) -> None:
    """Users active over ~12 days on several devices and countries, events on both sides of
    midnight, late events (received days after their timestamp), resent duplicates."""
    rng = random.Random(seed)
    events = []
    for index in range(260):
        ts = NOW - dt.timedelta(minutes=rng.randint(1, days * 24 * 60))
        if index % 20 == 0:
            ts = MIDNIGHT - dt.timedelta(microseconds=rng.choice((1, 0)))
        received = min(ts + dt.timedelta(seconds=rng.randint(1, 60)), NOW)
        if rng.random() < 0.1:
            received = min(ts + dt.timedelta(days=rng.randint(1, 5)), NOW)
        events.append(
            EventFactory.build(
                timestamp=ts,
                received_at=received,
                user_id=f"u{rng.randint(1, 40)}",
                session_id=f"s{index // 3}",
                device_type=rng.choice(DEVICES),
                country=rng.choice(COUNTRIES),
            )
        )
    Event.objects.bulk_create(events)
    for event in rng.sample(events, 15):
        event_resend(event)


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
    from django.db import connection

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


# ---------------------------------------------------------------------------------------------
# Weekly user bitmaps: day-bucketed reads take whole weeks from them.


def weekly_users() -> dict[tuple, set[str]]:
    """{(Monday, device, country): user ids} held by the weekly bitmaps (empty rows absent)."""
    names = dict(UserFirstSeen.objects.values_list("id", "user_id"))
    rows = UserBitmapWeekly.objects.values_list("bucket", "device_type", "country", "users")
    weeks = {
        (bucket, device, country): {names[key] for key in bitmap_load(data)}
        for bucket, device, country, data in rows
    }
    return {key: users for key, users in weeks.items() if users}


def raw_weekly_users(received_until: dt.datetime = NOW) -> dict[tuple, set[str]]:
    """The same from raw events received up to `received_until` (the rolled-up ones)."""
    weeks: dict[tuple, set[str]] = {}
    for event in Event.objects.filter(received_at__lte=received_until):
        day = event.timestamp.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        monday = day - dt.timedelta(days=day.weekday())
        weeks.setdefault((monday, event.device_type, event.country), set()).add(event.user_id)
    return weeks


WEEKLY_STATES = ("folded in small batches", "rebuilt since mid-week", "fully rebuilt")


@pytest.mark.parametrize("state", WEEKLY_STATES)
def test_weekly_bitmaps_hold_each_weeks_users_per_device_and_country(db, state):
    """Each weekly row (UTC week from Monday x device x country) holds exactly the users
    active in that week there: after folds in small batches (late events received days after
    their timestamp, resent duplicates), a later fold of a late event into an old week, a
    rebuild from a Wednesday (that week keeps its Monday and Tuesday users, whose daily rows
    the rebuild keeps) and a full rebuild."""
    dataset(seed=11, days=24)
    advance(batch=17)
    weeks = raw_weekly_users()
    assert len({monday for monday, _, _ in weeks}) == 5
    assert all(monday.weekday() == 0 for monday, _, _ in weeks)
    assert weekly_users() == weeks

    wednesday = dt.datetime(2026, 2, 25, 9, tzinfo=dt.UTC)  # a late event into an old week
    EventFactory(user_id="u_late", timestamp=wednesday, received_at=LATER, device_type="tablet")
    advance(now=LATER + dt.timedelta(minutes=1))
    assert "u_late" in weekly_users()[(dt.datetime(2026, 2, 23, tzinfo=dt.UTC), "tablet", "US")]
    if state == "rebuilt since mid-week":
        since = dt.date(2026, 3, 4)  # Wednesday of the week of 2026-03-02
        monday = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
        since_at = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
        before_since = Event.objects.filter(timestamp__gte=monday, timestamp__lt=since_at)
        assert before_since.exists(), "the rebuilt week should have users before `since`"
        UserBitmapWeekly.objects.filter(bucket=monday).delete()  # stale rows are replaced
        rollups_rebuild(since=since, now=LATER + dt.timedelta(minutes=1))
    elif state == "fully rebuilt":
        UserBitmapWeekly.objects.update(users=UserBitmapWeekly.objects.first().users)
        rollups_rebuild(now=LATER + dt.timedelta(minutes=1))
    assert weekly_users() == raw_weekly_users(LATER)


def test_a_day_bucketed_read_takes_whole_weeks_from_the_weekly_rows(db, monkeypatch):
    """A 30-day read reads its three whole weeks from the weekly rows and only its edge days
    (a Sunday before them, and the Monday and Tuesday after them) from the daily rows, and
    counts the same users as raw events, filtered or not."""
    users_reader = importlib.import_module("reports.selectors.users")
    read = users_reader.bitmaps_read
    buckets: dict[type, set[dt.datetime]] = {}

    def spy(rows):
        buckets.setdefault(rows.model, set()).update(rows.values_list("bucket", flat=True))
        return read(rows)

    monkeypatch.setattr(users_reader, "bitmaps_read", spy)
    dataset(seed=11, days=24)
    advance()
    f = filters_from_query({"start": "2026-02-15", "end": "2026-03-10"}, now=NOW)
    pages.audience(f)  # the first read of this rollup state: unions not cached yet
    mondays = {dt.datetime(2026, 2, day, tzinfo=dt.UTC) for day in (16, 23)}
    assert buckets[UserBitmapWeekly] == mondays | {dt.datetime(2026, 3, 2, tzinfo=dt.UTC)}
    edge_days = {dt.datetime(2026, 2, 15, tzinfo=dt.UTC)} | {
        dt.datetime(2026, 3, day, tzinfo=dt.UTC) for day in (9, 10)
    }
    assert buckets[UserBitmapDaily] == edge_days
    assert_users_match_raw(f)
    assert_users_match_raw(filters_from_query({"preset": "30d", "country": "DE"}, now=NOW))
    assert_users_match_raw(filters_from_query({"preset": "90d", "device": "tablet"}, now=NOW))


def test_migration_backfills_weekly_bitmaps_from_the_daily_rows(db):
    """Deploying the weekly bitmaps fills them from the daily rows (no rebuild, dashboards not
    emptied): the same rows, byte for byte, as the fold writes."""
    dataset(seed=11, days=24)
    advance(batch=50)
    folded = sorted(
        UserBitmapWeekly.objects.values_list("bucket", "device_type", "country", "users")
    )
    folded = [(*key, bytes(data)) for *key, data in folded]
    assert len(folded) > 30
    UserBitmapWeekly.objects.all().delete()
    migration = importlib.import_module("reports.migrations.0010_user_bitmaps_weekly")
    state = MigrationExecutor(connection).loader.project_state(
        ("reports", "0010_user_bitmaps_weekly")
    )
    migration.weekly_fill(state.apps, SimpleNamespace(connection=connection))
    filled = sorted(
        UserBitmapWeekly.objects.values_list("bucket", "device_type", "country", "users")
    )
    assert [(*key, bytes(data)) for *key, data in filled] == folded
    assert weekly_users() == raw_weekly_users()
