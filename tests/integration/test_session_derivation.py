"""Session ids derived at store time (ADR 0014): events of one person less than 30 minutes
apart share a session, whatever the order and batching they arrive in, and concurrent
requests for the same person agree."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from django.db import connection

from events.models import Event
from events.services import IngestSource, event_batch_ingest

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def at(minutes: float, **fields) -> dict:
    payload = {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": (T0 + dt.timedelta(minutes=minutes)).isoformat(),
        "anonymous_id": "visitor-1",
    }
    payload.update(fields)
    return payload


def ingest(*payloads: dict) -> None:
    outcomes = event_batch_ingest(list(payloads), source=IngestSource())
    assert [outcome.status for outcome in outcomes] == ["accepted"] * len(payloads), outcomes


def sessions(*payloads: dict) -> list[str]:
    by_id = dict(
        Event.objects.filter(event_id__in=[p["event_id"] for p in payloads]).values_list(
            "event_id", "session_id"
        )
    )
    return [by_id[uuid.UUID(p["event_id"])] for p in payloads]


@pytest.mark.django_db
def test_a_gap_of_30_minutes_or_more_starts_a_new_session():
    events = [at(0), at(10), at(39.9), at(69.9), at(80)]
    ingest(*events)
    ids = sessions(*events)
    assert ids[0] == ids[1] == ids[2]  # 29.9 min apart at most
    assert ids[3] != ids[2]  # exactly 30 min after the previous: a new session
    assert ids[4] == ids[3]
    assert all(Event.objects.filter(session_id=s).exists() for s in ids)


@pytest.mark.django_db
def test_a_batch_out_of_order_is_grouped_as_if_in_order():
    events = [at(50), at(0), at(25), at(120), at(10)]
    ingest(*events)
    ids = sessions(*events)
    assert len({ids[0], ids[1], ids[2], ids[4]}) == 1
    assert ids[3] != ids[0]


@pytest.mark.django_db
def test_later_batches_join_the_stored_session_and_late_events_too():
    first, second = at(0), at(20)
    ingest(first)
    ingest(second)  # 20 min after a stored event: same session
    late = at(-15)  # arrives last, 15 min before the first: joins that session
    ingest(late)
    far = at(-60)  # more than 30 min from everything: a session of its own
    ingest(far)
    ids = sessions(first, second, late, far)
    assert ids[0] == ids[1] == ids[2]
    assert ids[3] != ids[0]


@pytest.mark.django_db
def test_a_late_event_between_two_sessions_joins_the_nearer_one_and_merges_nothing():
    """Stored events are never rewritten (the rollups folded them once)."""
    morning, noon = at(0), at(50)
    ingest(morning)
    ingest(noon)
    assert sessions(morning)[0] != sessions(noon)[0]
    bridge = at(30)  # 30 after morning (not within), 20 before noon
    ingest(bridge)
    ids = sessions(morning, noon, bridge)
    assert ids[2] == ids[1] and ids[0] != ids[1]


@pytest.mark.django_db
def test_people_are_told_apart_and_an_explicit_session_id_is_joined():
    mine = at(0, session_id="client-session")
    ingest(mine)
    # The user's own device: visitor-1's id beside u1 would be a sign-in (one person).
    user_event = at(5, user_id="u1", anonymous_id="visitor-3")
    joined, other_person = at(5), at(5, anonymous_id="visitor-2")
    ingest(joined, other_person, user_event)
    ids = sessions(mine, joined, other_person, user_event)
    assert ids[1] == "client-session"
    assert len({ids[1], ids[2], ids[3]}) == 3


@pytest.mark.django_db
def test_a_resent_batch_gets_the_same_session_and_is_stored_once():
    events = [at(0), at(5)]
    ingest(*events)
    outcomes = event_batch_ingest(events, source=IngestSource())
    assert [outcome.status for outcome in outcomes] == ["duplicate", "duplicate"]
    assert Event.objects.count() == 2 and len(set(sessions(*events))) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_one_person_agree_on_the_session():
    """Eight threads, each its own database connection, store one event each of the same
    visitor a minute apart at the same moment: one session, not several."""
    events = [at(minutes, anonymous_id="busy") for minutes in range(8)]
    barrier = threading.Barrier(len(events))
    errors: list[BaseException] = []

    def send(payload: dict) -> None:
        try:
            barrier.wait(timeout=30)
            ingest(payload)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(payload,)) for payload in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(set(sessions(*events))) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_out_of_order_batches_agree_on_the_session():
    """Two batches of one visitor sent at once, interleaved in time and each out of order."""
    odd = [at(minutes, anonymous_id="racer") for minutes in (25, 5, 15)]
    even = [at(minutes, anonymous_id="racer") for minutes in (20, 0, 10)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def send(batch: list[dict]) -> None:
        try:
            barrier.wait(timeout=30)
            ingest(*batch)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(batch,)) for batch in (odd, even)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(set(sessions(*odd, *even))) == 1


@pytest.mark.django_db
def test_a_sign_in_continues_the_visitors_session_across_batches():
    """analytics.js, Snowplow and tracker.js send the anonymous id with every event, and the
    user id too once the visitor signs in: the visit is one session."""
    before = [at(0), at(5)]
    ingest(*before)
    after = [at(8, user_id="u-sign-in"), at(12, user_id="u-sign-in")]
    ingest(*after)
    ids = sessions(*before, *after)
    assert len(set(ids)) == 1, ids


@pytest.mark.django_db
def test_a_sign_in_within_one_batch_and_late_anonymous_events_join_the_same_session():
    visit = [at(0), at(4, user_id="u-batch"), at(9, user_id="u-batch")]
    ingest(*visit)
    late = at(2)  # the visitor's page view, delivered after the signed-in events
    ingest(late)
    ids = sessions(*visit, late)
    assert len(set(ids)) == 1, ids


@pytest.mark.django_db
def test_an_anonymous_id_shared_by_two_users_links_neither():
    """A shared device that was not reset: the anonymous id appears beside two users, so the
    two users' sessions stay apart, and the anonymous events stay the visitor's own."""
    shared = "visitor-shared"
    alice = at(0, anonymous_id=shared, user_id="alice")
    bob = at(3, anonymous_id=shared, user_id="bob")
    ingest(alice, bob)
    anonymous = at(5, anonymous_id=shared)
    ingest(anonymous)
    ids = sessions(alice, bob, anonymous)
    assert len(set(ids)) == 3, ids


@pytest.mark.django_db
def test_a_sign_in_more_than_30_minutes_after_the_visit_starts_a_new_session():
    before = at(0)
    ingest(before)
    after = at(31, user_id="u-later")
    ingest(after)
    assert len(set(sessions(before, after))) == 2


@pytest.mark.django_db
def test_stored_session_ids_of_a_sign_in_equal_the_raw_rows():
    """The derived ids are what the table holds: one session id for the whole visit, counted
    by raw SQL the way the sessions dashboard counts them."""
    ingest(at(0, anonymous_id="v-raw"), at(3, anonymous_id="v-raw"))
    ingest(at(6, anonymous_id="v-raw", user_id="u-raw"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(DISTINCT session_id), COUNT(*) FROM events_event WHERE anonymous_id = %s",
            ["v-raw"],
        )
        assert cursor.fetchone() == (1, 3)
