"""tracker.js's identify and alias calls (ADR 0018): `POST /identify` and `/alias` take a public
key in the query, answer the CORS preflight of a JSON request for the key's origins only, check
the Origin of the call itself, and link the browser's anonymous id to the user id (one person).
Through the site's WSGI application, with the ingestion fast path on and off."""

from __future__ import annotations

import orjson
import pytest

from events.models import Person, PersonLink
from tests.helpers import WsgiClient, error_pairs
from tests.public_keys import OTHER, SHOP, fresh_public_origins, public_key_create  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_key() -> str:
    return public_key_create(SHOP)


def _call(client: WsgiClient, path: str, body: dict, origin: str = SHOP):
    """What tracker.js sends: a JSON POST with the page's Origin, the key in the query."""
    return client.post_raw(path, orjson.dumps(body), "application/json", HTTP_ORIGIN=origin)


@pytest.mark.parametrize("path", ["/identify", "/alias", "/api/v1/identify"])
def test_the_preflight_of_an_identity_call_is_answered_for_the_keys_origins(
    ingest_client, public_key, path
):
    def preflight(origin: str):
        return ingest_client.request(
            "OPTIONS",
            f"{path}?key={public_key}",
            HTTP_ORIGIN=origin,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
        )

    allowed = preflight(SHOP)
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == SHOP
    assert "Content-Type" in allowed["Access-Control-Allow-Headers"]
    denied = preflight(OTHER)
    assert denied.status_code == 403
    assert "Access-Control-Allow-Origin" not in denied.headers
    assert error_pairs(denied.json()) == {("Origin", "allowed_origin")}


def test_identify_then_alias_with_a_public_key_make_one_person(ingest_client, public_key):
    identified = _call(
        ingest_client,
        f"/identify?key={public_key}",
        {"user_id": "customer_42", "anonymous_id": "anon-browser", "traits": {"plan": "gold"}},
    )
    assert identified.status_code == 200, identified.content
    assert identified["Access-Control-Allow-Origin"] == SHOP
    aliased = _call(
        ingest_client,
        f"/alias?key={public_key}",
        {"previous_id": "anon-phone", "user_id": "customer_42"},
    )
    assert aliased.status_code == 200, aliased.content
    person = Person.objects.get(distinct_id="customer_42")
    assert person.traits == {"plan": "gold"}
    links = PersonLink.objects.filter(user_id="customer_42").values_list("linked_id", flat=True)
    assert set(links) == {"anon-browser", "anon-phone"}


def test_an_identity_call_from_an_unlisted_origin_is_refused_and_links_nothing(
    ingest_client, public_key
):
    for path, body in (
        ("/identify", {"user_id": "u1", "anonymous_id": "a1"}),
        ("/alias", {"previous_id": "a1", "user_id": "u1"}),
    ):
        for origin in (OTHER, ""):
            refused = _call(ingest_client, f"{path}?key={public_key}", body, origin=origin)
            assert refused.status_code == 403, (path, origin)
            assert error_pairs(refused.json()) == {("Origin", "allowed_origin")}
    assert not Person.objects.exists()
    assert not PersonLink.objects.exists()


def test_a_bad_identity_call_is_a_400_the_page_can_read(ingest_client, public_key):
    """A refusal reaches the tracker (CORS headers on the 4xx), so it is not retried."""
    answer = _call(ingest_client, f"/identify?key={public_key}", {"user_id": 7})
    assert answer.status_code == 400
    assert answer["Access-Control-Allow-Origin"] == SHOP
    assert ("user_id", "invalid") in error_pairs(answer.json())
    assert not Person.objects.exists()
