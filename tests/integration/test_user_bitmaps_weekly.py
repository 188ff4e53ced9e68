"""Weekly user bitmaps (reports.services.user_bitmaps): each UTC week's users per device and
country, through folds, late events, rebuilds and the migration that backfills them; and
day-bucketed reads that take whole weeks from them count the same users as raw events."""

from __future__ import annotations

import datetime as dt
import importlib
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from events.models import Event
from reports.filters import filters_from_query
from reports.models import UserBitmapDaily, UserBitmapWeekly, UserFirstSeen
from reports.selectors import pages
from reports.selectors.user_bitmaps import bitmap_load
from reports.services.rollups import rollups_rebuild
from tests.factories import EventFactory
from tests.rollup_scaffold import LATER, NOW, advance
from tests.user_bitmaps_scaffold import assert_users_match_raw, dataset


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
