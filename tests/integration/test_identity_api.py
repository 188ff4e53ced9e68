"""`POST /identify` and `POST /alias` (and under /api/v1/): keys, answers and refusals like
/events, through the site's WSGI application."""

from __future__ import annotations

import datetime as dt

import pytest

from events import services
from events.models import KeyScope, Person, PersonLink
from tests.helpers import user_with_role

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
def test_identify_then_alias_over_http(dev_mode, ingest_client, prefix):
    """Identify stores traits and links the ids; alias merges a second id into the person."""
    identify = {"user_id": "u1", "anonymous_id": "anon-1", "traits": {"plan": "pro"}}
    response = ingest_client.post_json(f"{prefix}/identify", identify)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    alias = {"previous_id": "anon-2", "user_id": "u1", "timestamp": "2024-01-15T10:30:00Z"}
    assert ingest_client.post_json(f"{prefix}/alias/", alias).status_code == 200
    person = Person.objects.get()
    assert (person.distinct_id, person.traits) == ("u1", {"plan": "pro"})
    assert dict(PersonLink.objects.values_list("linked_id", "user_id")) == {
        "anon-1": "u1",
        "anon-2": "u1",
    }


def test_identify_with_null_ids_and_traits_means_absent(dev_mode, ingest_client):
    """null in an optional field is absent: an anonymous identify with null traits is fine."""
    body = {"user_id": None, "anonymous_id": "anon-1", "traits": None, "extra": 1}
    assert ingest_client.post_json("/identify", body).status_code == 200
    assert Person.objects.get().distinct_id == "anon-1"


@pytest.mark.parametrize(
    ("path", "body", "field", "rule"),
    [
        ("/identify", {"traits": {"a": 1}}, "user_id", "required"),
        ("/identify", {"user_id": "", "anonymous_id": None}, "user_id", "required"),
        ("/identify", {"user_id": "x" * 129}, "user_id", "max_length"),
        ("/identify", {"user_id": "a\x00b"}, "user_id", "invalid"),
        ("/identify", {"user_id": "u", "traits": [1]}, "traits", "not_a_dict"),
        ("/identify", {"user_id": "u", "traits": {"a": "\x00"}}, "traits", "no_nul_bytes"),
        ("/identify", {"user_id": "u", "traits": {"a": "x" * 9000}}, "traits", "max_size"),
        ("/identify", {"user_id": "u", "timestamp": "yesterday"}, "timestamp", "invalid"),
        (
            "/identify",
            {"user_id": "u", "timestamp": "0001-01-01T00:00:00Z"},
            "timestamp",
            "date_range",
        ),
        ("/alias", {"user_id": "u1"}, "previous_id", "required"),
        ("/alias", {"previous_id": "a", "user_id": {"x": 1}}, "user_id", "invalid"),
        ("/alias", [], "body", "object"),
    ],
)
def test_bad_input_is_a_400_naming_field_and_rule(dev_mode, ingest_client, path, body, field, rule):
    """Bad input is refused with the field and the rule it broke, and stores nothing."""
    response = ingest_client.post_json(path, body)
    assert response.status_code == 400, response.content
    assert (field, rule) in response.error_pairs()
    assert not Person.objects.exists()


def test_malformed_json_is_a_400(dev_mode, ingest_client):
    response = ingest_client.post_raw("/identify", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert ("body", "json") in response.error_pairs()


def test_identity_calls_need_the_write_scope(ingest_client):
    """Same keys and scopes as /events: no key 401, a read key 403, a write key 200."""
    body = {"user_id": "u1"}
    assert ingest_client.post_json("/identify", body).status_code == 401
    read_key = services.ingestion_key_create(name="r", scopes=[KeyScope.READ]).raw_key
    refused = ingest_client.post_json("/identify", body, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert refused.status_code == 403
    write_key = services.ingestion_key_create(name="w", scopes=[KeyScope.WRITE]).raw_key
    for path, payload in (("/identify", body), ("/alias", {"previous_id": "a", "user_id": "u1"})):
        answer = ingest_client.post_json(path, payload, HTTP_AUTHORIZATION=f"Bearer {write_key}")
        assert answer.status_code == 200


def test_admin_finds_a_person_by_any_of_their_ids_and_cannot_edit_it(client):
    """The Admin searches people by canonical or linked id; the record is read-only there."""
    services.person_identify(
        user_id="u-admin",
        anonymous_id="anon-admin",
        traits={"email": "a@x"},
        timestamp=dt.datetime(2024, 1, 15, tzinfo=dt.UTC),
        source="api",
    )
    client.force_login(user_with_role("Admin"))
    listing = client.get("/admin/events/person/", {"q": "anon-admin"})
    assert listing.status_code == 200
    assert b"u-admin" in listing.content
    person = Person.objects.get()
    page = client.get(f"/admin/events/person/{person.pk}/change/")
    assert b"a@x" in page.content and b"anon-admin" in page.content
    assert b'name="_save"' not in page.content
