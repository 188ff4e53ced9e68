"""Custom events on the overview: the event mix and the custom-events table (per name: events,
people, events per bucket) equal raw SQL (tests/dashboard_reference.py) with every filter set,
with nothing, part or all of the events folded; the table downloads as CSV and shows on the
page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
from django.utils import timezone

from events import services
from events.models import Event
from reports.filters import filters_from_query
from reports.selectors import pages
from reports.services.rollups import rollups_advance
from tests.dashboard_reference import (
    NOW,
    assert_dashboard_matches_raw,
    filter_sets,
    generate_events,
    load,
    ref_custom_events,
    ref_totals,
)
from tests.factories import event_payload
from tests.helpers import user_with_role

pytestmark = pytest.mark.postgres

NAMES = ("newsletter_signup", "Video Played", "wishlist.add")


def _custom_copies(events: list[Event]) -> list[Event]:
    """Custom events at the times, devices and countries of some shop events; a third of them
    anonymous (two anonymous ids later identified)."""
    copies = []
    for index, event in enumerate(events[::5]):
        copy = Event(
            **{
                f.attname: getattr(event, f.attname)
                for f in Event._meta.concrete_fields
                if f.attname not in {"id", "txid"}
            }
        )
        copy.event_id, copy.event_type = uuid.uuid4(), NAMES[index % len(NAMES)]
        copy.product_id = copy.category = copy.currency = copy.order_id = ""
        copy.revenue = None
        if index % 3 == 0:
            copy.user_id, copy.anonymous_id = "", f"anon_c{index % 5}"
        copies.append(copy)
    return copies


@pytest.fixture
def dataset(require_postgres, db) -> list[Event]:
    events = generate_events()
    load(events)
    Event.objects.bulk_create(_custom_copies(events))
    for index in range(2):
        services.person_identify(
            user_id=f"user_{index + 1}",
            anonymous_id=f"anon_c{index}",
            traits={},
            timestamp=NOW,
            source="api",
        )
    return events


def test_the_table_is_not_empty_on_this_data(dataset):
    f = filter_sets()[2]  # 30 days
    rows = pages.overview(f)["custom_events"]
    assert {row["event_type"] for row in rows} == set(NAMES)
    assert rows == [
        {**row, "sparkline": shown["sparkline"]}
        for row, shown in zip(ref_custom_events(f), rows, strict=True)
    ]
    mix = {row["event_type"] for row in pages.overview(f)["event_mix"]}
    assert set(NAMES) <= mix


@pytest.mark.parametrize("tail_in_memory", [True, False], ids=["tail-in-python", "tail-in-sql"])
def test_custom_events_equal_raw_in_every_fold_state(dataset, settings, tail_in_memory):
    settings.ROLLUP_TAIL_IN_MEMORY_MAX = 50_000 if tail_in_memory else 0
    for now in (None, NOW - dt.timedelta(days=4), NOW + dt.timedelta(minutes=5)):
        if now is not None:
            rollups_advance(now=now, max_seconds=60)
        for f in filter_sets():
            assert_dashboard_matches_raw(f)


def test_the_table_downloads_as_csv_and_shows_on_the_overview(dataset, client):
    """Same filters as the page; the trend is the events per bucket, oldest first."""
    client.force_login(user_with_role("Viewer"))
    query = {"start": "2026-02-18", "end": "2026-03-07", "device": "mobile"}
    response = client.get("/overview/csv/custom_events/", query)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    expected = ref_custom_events(filters_from_query(query, now=NOW))
    assert expected
    assert [(r["event_type"], int(r["events"]), int(r["users"])) for r in rows] == [
        (row["event_type"], row["events"], row["users"]) for row in expected
    ]
    assert [[int(n) for n in r["trend"].split()] for r in rows] == [
        row["trend"] for row in expected
    ]
    page = client.get("/", query)
    assert b"Custom events" in page.content and b"wishlist.add" in page.content


def _signups(*ids: tuple[str, str]) -> None:
    """One newsletter_signup per (user id, anonymous id), a minute ago."""
    payloads = [
        event_payload(event_type="newsletter_signup", user_id=user_id, anonymous_id=anonymous_id)
        for user_id, anonymous_id in ids
    ]
    outcomes = services.event_batch_ingest(payloads, source=services.IngestSource())
    assert {outcome.status for outcome in outcomes} == {"accepted"}


@pytest.mark.parametrize("folded", [False, True], ids=["raw-tail", "folded-then-merged"])
def test_users_per_custom_name_count_a_person_with_several_ids_once(require_postgres, db, folded):
    """A shopper who signed up on a laptop (anonymous), on a phone (anonymous) and signed in is
    three ids and one person once identify and alias link them; another shopper makes two. The
    table's users equal raw SQL over events joined to the links, also when the links come after
    the rollups folded the events (ADR 0015: the rollups are re-keyed)."""
    _signups(("", "anon-laptop"), ("", "anon-phone"), ("cust-1", "anon-laptop"), ("cust-2", ""))
    if folded:
        rollups_advance(now=timezone.now() + dt.timedelta(minutes=5), max_seconds=60)
    services.person_identify(
        user_id="cust-1",
        anonymous_id="anon-laptop",
        traits={},
        timestamp=timezone.now(),
        source="api",
    )
    services.person_alias(
        previous_id="anon-phone", user_id="cust-1", timestamp=timezone.now(), source="api"
    )
    f = filters_from_query({"preset": "24h"})
    rows = [r for r in pages.overview(f)["custom_events"] if r["event_type"] == "newsletter_signup"]
    assert [(row["events"], row["users"]) for row in rows] == [(4, 2)]
    expected = [r for r in ref_custom_events(f) if r["event_type"] == "newsletter_signup"]
    assert [(row["events"], row["users"]) for row in expected] == [(4, 2)]
    ids = Event.objects.values_list("user_id", "anonymous_id").distinct()
    assert len({user_id or anonymous_id for user_id, anonymous_id in ids}) == 4  # four ids
    assert pages.overview(f)["kpis"]["users"]["value"] == ref_totals(f)["users"] == 2
