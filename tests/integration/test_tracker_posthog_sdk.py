"""The real posthog-python SDK (7.x), configured only with a host and a key as its docs say,
against a live server: what it sends is stored (ids, names, mapped and derived fields, skew
corrected), a re-send is a duplicate, a bad message is quarantined with its original, identify
and alias reach the person records, and its feature-flag calls answer "no flags"."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import posthog
import pytest
import requests
from django.core.cache import cache
from django.db import connection

from events import services
from events.facade import EVENTS_TABLE
from events.models import Event, Person, PersonLink, RejectedEvent
from events.original_selectors import event_original
from reports.filters import filters_from_query
from reports.selectors import pages
from tests.dashboard_reference import assert_dashboard_matches_raw
from trackers.event_ids import event_id_for

MINUTE = dt.timedelta(minutes=1)
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]


@pytest.fixture
def key():
    return services.ingestion_key_create(name="posthog", scopes=["write"])


def client_for(live_server, key, **options) -> posthog.Posthog:
    return posthog.Posthog(key.raw_key, host=live_server.url, **options)


def send(client: posthog.Posthog) -> None:
    client.flush()
    client.shutdown()


def stored_id(key, message_uuid: str) -> uuid.UUID:
    return uuid.UUID(
        event_id_for(source="posthog", key_id=key.key.id, message_id=message_uuid, message=None)
    )


def test_events_are_stored_with_their_mapped_fields(live_server, key):
    client = client_for(live_server, key)
    page = str(uuid.uuid4())
    client.capture(
        "$pageview",
        distinct_id="user-1",
        uuid=page,
        properties={
            "$current_url": "https://shop.example/p/42",
            "$session_id": "sess-1",
            "$device_type": "Mobile",
            "plan": "pro",
        },
    )
    custom = client.capture("newsletter_signup", distinct_id="user-1", properties={"list": "w"})
    added = client.capture(
        "Product Added",
        distinct_id="user-1",
        properties={"product_id": "sku-9", "price": 19.99, "quantity": 2, "currency": "EUR"},
    )
    order = client.capture(
        "Order Completed",
        distinct_id="user-1",
        properties={"order_id": "o-77", "revenue": 39.98, "currency": "EUR"},
    )
    send(client)

    by_id = {event.event_id: event for event in Event.objects.all()}
    assert len(by_id) == 4
    pageview = by_id[stored_id(key, page)]
    assert pageview.event_type == "page_view"
    assert (pageview.user_id, pageview.session_id) == ("user-1", "sess-1")
    assert pageview.page_url == "https://shop.example/p/42"
    assert pageview.device_type == "mobile"
    assert pageview.properties["plan"] == "pro"
    assert pageview.properties["$lib"] == "posthog-python"
    signup = by_id[stored_id(key, custom)]
    assert signup.event_type == "newsletter_signup" and signup.properties == {
        "list": "w",
        **{k: v for k, v in signup.properties.items() if k.startswith("$")},
    }
    cart = by_id[stored_id(key, added)]
    assert (cart.event_type, cart.product_id, cart.quantity) == ("add_to_cart", "sku-9", 2)
    assert str(cart.price) == "19.99" and cart.currency == "EUR"
    # The fields that became columns are stored once (ADR 0042); the original keeps them.
    assert not {"product_id", "price", "quantity", "currency"} & set(cart.properties)
    assert event_original(cart)["properties"]["price"] == 19.99
    purchase = by_id[stored_id(key, order)]
    assert (purchase.event_type, purchase.order_id, str(purchase.revenue)) == (
        "purchase",
        "o-77",
        "39.98",
    )


def test_clock_skew_is_corrected_from_sent_at(live_server, key, monkeypatch):
    """A client whose clock is an hour ahead: the event is stored at the server's time of it
    (received - (sent_at - timestamp)); the client's own time is kept."""
    ahead = dt.timedelta(hours=1)
    real = dt.datetime

    class ClientClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + ahead

    monkeypatch.setattr(posthog.request, "datetime", ClientClock)
    client = client_for(live_server, key)
    happened = real.now(dt.UTC) + ahead - dt.timedelta(seconds=30)
    sent = client.capture("$pageview", distinct_id="u", timestamp=happened)
    send(client)

    event = Event.objects.get(event_id=stored_id(key, sent))
    assert event.client_timestamp == happened
    lag = event.received_at - event.timestamp
    assert dt.timedelta(seconds=25) < lag < dt.timedelta(seconds=35)


def test_a_resent_message_is_stored_once(live_server, key):
    message_uuid = str(uuid.uuid4())
    for _ in range(2):
        client = client_for(live_server, key)
        client.capture("$pageview", distinct_id="u", uuid=message_uuid)
        send(client)
    assert Event.objects.filter(event_id=stored_id(key, message_uuid)).count() == 1
    assert Event.objects.count() == 1


def test_a_bad_message_is_quarantined_with_its_original(live_server, key):
    """An order without revenue is refused (purchase needs it) and kept as PostHog sent it;
    the good message beside it is stored."""
    client = client_for(live_server, key)
    bad = client.capture("Order Completed", distinct_id="u", properties={"order_id": "o-1"})
    client.capture("$pageview", distinct_id="u")
    send(client)

    assert Event.objects.count() == 1
    rejected = RejectedEvent.objects.get()
    assert ("revenue", "required") in {(r["field"], r["rule"]) for r in rejected.reasons}
    kept = json.loads(rejected.raw_payload)
    original = kept.get("original", kept)
    assert original["uuid"] == bad and original["event"] == "Order Completed"


def test_gzip_bodies_are_accepted(live_server, key):
    client = client_for(live_server, key, gzip=True)
    sent = client.capture("$pageview", distinct_id="u")
    send(client)
    assert Event.objects.filter(event_id=stored_id(key, sent)).exists()


def test_identify_and_alias_reach_the_person_records(live_server, key):
    """$identify with an anonymous id links it and sets traits; alias() links two ids."""
    client = client_for(live_server, key)
    client.capture(
        "$identify",
        distinct_id="user-5",
        properties={"$anon_distinct_id": "anon-5", "$set": {"email": "a@example.com"}},
    )
    client.alias(previous_id="anon-6", distinct_id="user-5")
    client.set(distinct_id="user-5", properties={"plan": "gold"})
    send(client)

    person = Person.objects.get(distinct_id="user-5")
    assert person.traits == {"email": "a@example.com", "plan": "gold"}
    linked = set(PersonLink.objects.filter(user_id="user-5").values_list("linked_id", flat=True))
    assert linked == {"anon-5", "anon-6"}
    assert Event.objects.count() == 0  # identity calls are not events


def test_a_sign_in_without_session_ids_is_one_session_on_the_dashboard(live_server, key):
    """posthog-python sends no $session_id and switches distinct_id at sign-in: the events
    before carry only the anonymous id, those after only the user id, and $identify links
    the two. The request's identify is applied before its events are stored, so the visit is
    one session, and the dashboard's sessions number is the table's (ADR 0014)."""
    now = dt.datetime.now(dt.UTC)
    client = client_for(live_server, key)
    for minutes in (20, 15):
        client.capture("$pageview", distinct_id="anon-visit", timestamp=now - minutes * MINUTE)
    client.capture(
        "$identify", distinct_id="user-visit", properties={"$anon_distinct_id": "anon-visit"}
    )
    for minutes in (10, 5):
        client.capture("$pageview", distinct_id="user-visit", timestamp=now - minutes * MINUTE)
    send(client)

    rows = list(Event.objects.values_list("user_id", "session_id"))
    # A server SDK's distinct_id is stored as the user id, whichever it is (trackers/posthog).
    assert sorted(user for user, _ in rows) == ["anon-visit"] * 2 + ["user-visit"] * 2
    assert len({session for _, session in rows}) == 1
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(DISTINCT session_id) FROM {EVENTS_TABLE}")  # noqa: S608
        (raw_sessions,) = cursor.fetchone()
    cache.clear()
    f = filters_from_query({"preset": "24h"}, now=now + MINUTE)
    assert pages.overview(f)["kpis"]["sessions"]["value"] == raw_sessions == 1
    assert_dashboard_matches_raw(f)


def test_feature_flag_calls_answer_no_flags(live_server, key):
    """The SDK's /flags/ call gets flags off (not an error); /decide/ as older SDKs expect."""
    client = client_for(live_server, key)
    assert client.get_all_flags("user-1") == {}
    assert client.get_feature_flag_result("beta", "user-1") is None
    send(client)
    for path in ("/flags/?v=4", "/decide/?v=3"):
        answer = requests.post(live_server.url + path, json={"api_key": "x"}, timeout=10)
        assert answer.status_code == 200
        assert answer.json()["featureFlags"] == {} and answer.json()["flags"] == {}


def test_a_wrong_key_is_refused_and_nothing_stored(live_server, key):
    body = {"api_key": "not-a-key", "batch": [{"event": "$pageview", "distinct_id": "u"}]}
    answer = requests.post(live_server.url + "/batch/", json=body, timeout=10)
    assert answer.status_code in (401, 403)
    assert answer.json()["errors"][0]["field"] == "Authorization"
    assert Event.objects.count() == 0
