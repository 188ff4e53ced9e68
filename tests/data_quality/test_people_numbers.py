"""Distinct users count people (ADR 0015): after identify and alias calls, every dashboard
number equals raw SQL over the events joined to the links (tests/dashboard_reference.py), with
the links made before the rollups fold the events, after (the folded counts are re-keyed), or in
between; and the re-keyed rollups equal a rebuild from the raw events, row for row."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db.models import Q

from events import services
from events.models import Event, Person, PersonLink
from governance.services.erasure import erasure_request_create, erasure_request_run
from reports.models import UserFirstSeen
from reports.selectors import pages
from reports.services.rollups import rollups_advance, rollups_rebuild
from tests.dashboard_reference import (
    NOW,
    assert_dashboard_matches_raw,
    filter_sets,
    generate_events,
    load,
    ref_totals,
)
from tests.rollup_scaffold import table_state

pytestmark = pytest.mark.postgres

AFTER = NOW + dt.timedelta(minutes=5)
PARTWAY = NOW - dt.timedelta(days=4)


def _anonymous_copies(events: list[Event]) -> list[Event]:
    """Anonymous visits: copies of some events with no user id, under 12 anonymous ids."""
    copies = []
    for index, event in enumerate(events[::9]):
        copy = Event(
            **{
                f.attname: getattr(event, f.attname)
                for f in Event._meta.concrete_fields
                if f.attname not in {"id", "txid"}
            }
        )
        copy.event_id, copy.user_id = uuid.uuid4(), ""
        copy.anonymous_id, copy.session_id = f"anon_{index % 12}", f"anon_s_{index}"
        copies.append(copy)
    return copies


@pytest.fixture
def dataset(require_postgres, db) -> list[Event]:
    events = generate_events()
    load(events)
    Event.objects.bulk_create(_anonymous_copies(events))
    return events


def _link_people() -> None:
    """Anonymous ids identified as users (two as the same user), an anonymous id identified
    alone, and two known users aliased into one (both already active)."""
    at = NOW - dt.timedelta(hours=1)
    for index in range(8):
        services.person_identify(
            user_id=f"user_{index % 6 + 1}",
            anonymous_id=f"anon_{index}",
            traits={"plan": "pro"},
            timestamp=at,
            source="api",
        )
    services.person_identify(
        user_id=None, anonymous_id="anon_9", traits={"utm": "mail"}, timestamp=at, source="api"
    )
    for previous, user in (("user_20", "user_21"), ("user_22", "user_1")):
        services.person_alias(previous_id=previous, user_id=user, timestamp=at, source="api")


def _assert_numbers_equal_raw() -> None:
    for f in filter_sets():
        assert_dashboard_matches_raw(f)


def test_the_links_change_the_counts(dataset):
    """The join is not a no-op on this data: linking lowers the number of distinct users."""
    f = filter_sets()[2]  # 30 days
    before = pages.overview(f)["kpis"]["users"]["value"]
    _link_people()
    after = pages.overview(f)["kpis"]["users"]["value"]
    assert after == ref_totals(f)["users"]
    assert after < before


@pytest.mark.parametrize("tail_in_memory", [True, False], ids=["tail-in-python", "tail-in-sql"])
def test_links_made_before_the_fold(dataset, settings, tail_in_memory):
    """Linked before anything is folded: the raw tail and then the rollups count people."""
    settings.ROLLUP_TAIL_IN_MEMORY_MAX = 50_000 if tail_in_memory else 0
    _link_people()
    _assert_numbers_equal_raw()
    rollups_advance(now=PARTWAY, max_seconds=60)
    _assert_numbers_equal_raw()
    rollups_advance(now=AFTER, max_seconds=60)
    _assert_numbers_equal_raw()


@pytest.mark.parametrize("tail_in_memory", [True, False], ids=["tail-in-python", "tail-in-sql"])
def test_links_made_after_a_partial_fold_rekey_what_was_folded(dataset, settings, tail_in_memory):
    """Folded under their own ids, then linked: the folded counts move to the person, the tail
    resolves through the links, and both agree with raw SQL before and after the next fold."""
    settings.ROLLUP_TAIL_IN_MEMORY_MAX = 50_000 if tail_in_memory else 0
    rollups_advance(now=PARTWAY, max_seconds=60)
    _assert_numbers_equal_raw()  # warms the per-state caches the merge must retire
    _link_people()
    assert not UserFirstSeen.objects.filter(user_id__in=["anon_0", "user_20"]).exists()
    _assert_numbers_equal_raw()
    rollups_advance(now=AFTER, max_seconds=60)
    _assert_numbers_equal_raw()


def test_rekeyed_rollups_equal_a_rebuild(dataset):
    """Fully folded, then linked: every rollup row (user bitmaps, first-seen rows and bitmaps
    included) equals a rebuild from the raw events with the links in place."""
    rollups_advance(now=AFTER, max_seconds=60)
    _link_people()
    rekeyed = table_state()
    rollups_rebuild(now=AFTER)
    assert table_state() == rekeyed
    _assert_numbers_equal_raw()


def test_a_repeated_link_changes_nothing(dataset):
    """Identify and alias are idempotent down to the rollups."""
    rollups_advance(now=AFTER, max_seconds=60)
    _link_people()
    once = table_state()
    _link_people()
    assert table_state() == once


def test_erasing_a_person_erases_every_linked_id_and_the_person_record(dataset):
    """An erasure naming only the user id also removes the events of the ids linked to them,
    their person record and links; the rollups equal a rebuild and the numbers raw SQL."""
    rollups_advance(now=PARTWAY, max_seconds=60)
    _link_people()
    ids = services.person_ids(["user_1"])
    assert {"anon_0", "anon_6", "user_22"} <= set(ids)
    request = erasure_request_create(user_id="user_1", via="command", enqueue=False)
    assert erasure_request_run(request.pk, batch=7).status == "done"
    assert not Event.objects.filter(Q(user_id__in=ids) | Q(anonymous_id__in=ids)).exists()
    assert not Person.objects.filter(distinct_id__in=ids).exists()
    assert not PersonLink.objects.filter(Q(linked_id__in=ids) | Q(user_id__in=ids)).exists()
    assert PersonLink.objects.filter(user_id="user_2").exists()  # other people stay linked
    _assert_numbers_equal_raw()
    rollups_advance(now=AFTER, max_seconds=60)
    erased = table_state()
    rollups_rebuild(now=AFTER)
    assert table_state() == erased
