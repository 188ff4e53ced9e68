"""Sessions follow identify and alias links (ADR 0014, 0015): a server SDK that switches from
the anonymous id to the user id at sign-in (posthog-python without `$session_id`) sends no
event carrying both, only the identify call, and its visit is still one session when its
events are stored after the link."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from events.services import person_alias, person_identify
from tests.integration.test_session_derivation import T0, at, ingest, sessions


def identify(user_id: str, anonymous_id: str) -> None:
    person_identify(
        user_id=user_id, anonymous_id=anonymous_id, traits={}, timestamp=T0, source="api"
    )


def alias(previous_id: str, user_id: str) -> None:
    person_alias(previous_id=previous_id, user_id=user_id, timestamp=T0, source="api")


@pytest.mark.django_db
@pytest.mark.parametrize("call", ["identify", "alias"])
def test_anonymous_events_then_the_link_then_user_events_are_one_session(call):
    """The common order: browsing stored, then $identify (or alias), then signed-in events."""
    before = [at(0, anonymous_id="anon-a"), at(5, anonymous_id="anon-a")]
    ingest(*before)
    if call == "identify":
        identify("user-a", "anon-a")
    else:
        alias("anon-a", "user-a")
    after = [at(minutes, user_id="user-a", anonymous_id=None) for minutes in (15, 20)]
    ingest(*after)
    ids = sessions(*before, *after)
    assert len(set(ids)) == 1, ids


@pytest.mark.django_db
def test_the_link_then_user_events_then_late_anonymous_events_are_one_session():
    identify("user-b", "anon-b")
    signed_in = at(10, user_id="user-b", anonymous_id=None)
    ingest(signed_in)
    late = at(0, anonymous_id="anon-b")  # the visit before the sign-in, delivered late
    ingest(late)
    ids = sessions(signed_in, late)
    assert ids[0] == ids[1], ids


@pytest.mark.django_db
def test_the_batch_that_follows_a_link_joins_both_sides_stored_before_it_once():
    """Stored events are never rewritten: both sides stored before the link stay two
    sessions (the limitation ADR 0014 names); a later event of the person joins the nearer."""
    anonymous = at(0, anonymous_id="anon-c")
    signed_in = at(10, user_id="user-c", anonymous_id=None)
    ingest(anonymous)
    ingest(signed_in)
    identify("user-c", "anon-c")
    later = at(12, user_id="user-c", anonymous_id=None)
    ingest(later)
    ids = sessions(anonymous, signed_in, later)
    assert ids[0] != ids[1] and ids[2] == ids[1], ids


@pytest.mark.django_db
def test_a_linked_anonymous_id_two_hours_away_is_another_session():
    identify("user-d", "anon-d")
    anonymous = at(0, anonymous_id="anon-d")
    signed_in = at(120, user_id="user-d", anonymous_id=None)
    ingest(anonymous)
    ingest(signed_in)
    ids = sessions(anonymous, signed_in)
    assert ids[0] != ids[1], ids


@pytest.mark.django_db
def test_a_shared_device_is_not_joined_to_the_second_user():
    """identify keeps an anonymous id with its first user: the second user's sessions stay
    apart from the device's; and a device seen beside two users on events links neither."""
    identify("alice", "device")
    identify("bob", "device")  # kept with alice (ADR 0015)
    device = at(0, anonymous_id="device")
    bob = at(5, user_id="bob", anonymous_id=None)
    ingest(device)
    ingest(bob)
    assert len(set(sessions(device, bob))) == 2

    identify("carol", "tablet")
    with_carol = at(60, anonymous_id="tablet", user_id="carol")
    with_dave = at(62, anonymous_id="tablet", user_id="dave")
    ingest(with_carol, with_dave)
    alone = at(65, anonymous_id="tablet")
    ingest(alone)
    assert len(set(sessions(with_carol, with_dave, alone))) == 3


@pytest.mark.django_db
def test_an_aliased_user_id_is_its_new_persons():
    old = at(0, user_id="old-login", anonymous_id=None)
    ingest(old)
    alias("old-login", "new-login")
    new = at(5, user_id="new-login", anonymous_id=None)
    ingest(new)
    assert len(set(sessions(old, new))) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_the_user_side_waits_for_the_anonymous_side_in_flight_and_joins_it():
    """After the link, both sides take the person's lock: a batch of the user id waits for a
    transaction storing the linked anonymous id's events, then sees its rows and joins."""
    identify("user-race", "anon-race")
    anonymous = [at(minutes, anonymous_id="anon-race") for minutes in (0, 10)]
    signed_in = [at(minutes, user_id="user-race", anonymous_id=None) for minutes in (5, 15)]
    stored, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run(work) -> None:
        try:
            work()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def anonymous_side() -> None:
        with transaction.atomic():
            ingest(*anonymous)
            stored.set()
            release.wait(timeout=30)

    def user_side() -> None:
        stored.wait(timeout=30)
        ingest(*signed_in)

    threads = [threading.Thread(target=run, args=(work,)) for work in (anonymous_side, user_side)]
    for thread in threads:
        thread.start()
    threads[1].join(timeout=1)
    waited = threads[1].is_alive()  # blocked on the person's lock, not racing past it
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and waited
    assert len(set(sessions(*anonymous, *signed_in))) == 1
