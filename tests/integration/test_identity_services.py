"""Identify and alias (events.services.person_identify / person_alias): people, traits, links."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from events import services
from events.models import Person, PersonLink

T0 = dt.datetime(2024, 1, 15, 10, 0, tzinfo=dt.UTC)


def _identify(user_id=None, anonymous_id=None, traits=None, at=T0):
    services.person_identify(
        user_id=user_id, anonymous_id=anonymous_id, traits=traits or {}, timestamp=at, source="api"
    )


def _links() -> dict[str, str]:
    return dict(PersonLink.objects.values_list("linked_id", "user_id"))


@pytest.mark.django_db
def test_identify_stores_traits_and_links_the_anonymous_id():
    """Identify with both ids makes one person (the user id) holding the anonymous id."""
    _identify("u1", "anon-1", {"plan": "pro"})
    person = Person.objects.get()
    assert (person.distinct_id, person.traits) == ("u1", {"plan": "pro"})
    assert _links() == {"anon-1": "u1"}
    assert services.person_ids(["anon-1"]) == ["anon-1", "u1"]


@pytest.mark.django_db
def test_identify_twice_is_idempotent_and_newer_traits_win_whatever_the_order():
    """Repeating a call changes nothing; an older call arriving late does not undo a newer one."""
    later = T0 + dt.timedelta(hours=1)
    _identify("u1", "anon-1", {"plan": "pro", "email": "a@x"}, at=later)
    _identify("u1", "anon-1", {"plan": "free", "name": "Ann"}, at=T0)
    _identify("u1", "anon-1", {"plan": "free", "name": "Ann"}, at=T0)
    person = Person.objects.get()
    assert person.traits == {"plan": "pro", "email": "a@x", "name": "Ann"}
    assert (person.first_seen, person.last_seen) == (T0, later)
    assert PersonLink.objects.count() == 1


@pytest.mark.django_db
def test_anonymous_person_merges_into_the_user_when_identified():
    """An anonymous visitor's traits join the user they turn out to be; the anonymous record
    goes, and an anonymous id already taken is not moved to a second user by identify."""
    _identify(anonymous_id="anon-1", traits={"utm": "mail"})
    _identify("u1", traits={"plan": "pro"})
    _identify("u1", "anon-1")
    _identify("u2", "anon-1")
    assert list(Person.objects.order_by("distinct_id").values_list("distinct_id", "traits")) == [
        ("u1", {"utm": "mail", "plan": "pro"}),
        ("u2", {}),
    ]
    assert _links() == {"anon-1": "u1"}


@pytest.mark.django_db
def test_alias_merges_people_and_links_point_at_the_canonical_id():
    """Alias moves the previous id's person, with its linked ids, into the user's: every link
    points at a canonical id (one join finds a person's events)."""
    _identify("old-user", "anon-1")
    services.person_alias(previous_id="old-user", user_id="u9", timestamp=T0, source="segment")
    services.person_alias(previous_id="old-user", user_id="u9", timestamp=T0, source="segment")
    assert _links() == {"anon-1": "u9", "old-user": "u9"}
    assert list(Person.objects.values_list("distinct_id", flat=True)) == ["u9"]
    assert PersonLink.objects.get(linked_id="old-user").source == "segment"


@pytest.mark.django_db
def test_merge_listeners_hear_each_merge_once():
    """Apps counting people are told which id merged into which, once per merge."""
    heard = []
    services.person_merge_listener_register(heard.extend)
    try:
        _identify("u1", "anon-1")
        _identify("u1", "anon-1")
        services.person_alias(previous_id="u1", user_id="u2", timestamp=T0, source="api")
    finally:
        services.identity._merge_listeners.remove(heard.extend)
    assert heard == [("anon-1", "u1"), ("u1", "u2")]


@pytest.mark.django_db
def test_people_delete_removes_records_and_links():
    """Erasure removes every person record and link of the ids it is given."""
    _identify("u1", "anon-1", {"email": "a@x"})
    _identify("u2", "anon-2")
    removed = services.people_delete(services.person_ids(["u1"]))
    assert removed == 2
    assert list(Person.objects.values_list("distinct_id", flat=True)) == ["u2"]
    assert _links() == {"anon-2": "u2"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_identify_calls_make_one_person_and_one_link(require_postgres):
    """Two workers identifying the same ids at once leave one person and one link, not two or
    an error (the graph lock serializes them)."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(user_id: str) -> None:
        try:
            barrier.wait()
            _identify(user_id, "anon-1", {"by": user_id})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"u{i % 2}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    links = _links()
    assert list(links) == ["anon-1"]
    assert Person.objects.filter(distinct_id=links["anon-1"]).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["x" * 129, "a\x00b"])
def test_ids_the_database_cannot_hold_are_a_value_error(bad):
    """Translators get a ValueError to refuse with, not a database error."""
    with pytest.raises(ValueError, match="128"):
        _identify(bad)
    with pytest.raises(ValueError, match="128"):
        services.person_alias(previous_id=bad, user_id="u1", timestamp=T0, source="api")
    assert not Person.objects.exists()
