"""The scaffold of the user bitmap tests (tests/integration/test_user_bitmaps*.py): a dataset
of users on several devices and countries, late and resent events, and the reference check that
distinct and new users equal a plain Python count over raw events."""

from __future__ import annotations

import datetime as dt
import random

from events.models import Event
from reports.filters import DashboardFilters, filters_from_query
from reports.selectors import pages
from tests.factories import EventFactory
from tests.rollup_scaffold import NOW, event_resend

MIDNIGHT = dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
DEVICES = ("desktop", "mobile", "tablet")
COUNTRIES = ("US", "DE", "FR")


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
