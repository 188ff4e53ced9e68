"""The real Segment and RudderStack Python SDKs, configured only with a host and a write key as
their docs say, against a live server (pytest-django's live_server, on PostgreSQL): flush, then
assert what is stored (ids, names, mapped and derived fields, skew correction, dedupe on
re-send, identify and alias on people, a bad message quarantined with its original message)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import rudderstack.analytics as rudder_analytics
import rudderstack.analytics.request as rudder_request
import segment.analytics as segment_analytics
import segment.analytics.request as segment_request

from events import services
from events.models import Event, Person, PersonLink, RejectedEvent
from events.original_selectors import event_original
from trackers.event_ids import event_id_for

pytestmark = [pytest.mark.usefixtures("require_postgres", "transactional_db")]

UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def write_key(settings) -> services.CreatedKey:
    settings.INGEST_ALLOW_ANONYMOUS = False
    return services.ingestion_key_create(name="sdk", scopes=["write"])


SDKS = ["segment", "rudderstack"]


@pytest.fixture
def sdk_client(request, live_server, write_key):
    """The SDK's module, configured as its README says (a write key and this server), with a
    fresh default client; shut down (flushed, its thread joined) after the test."""
    if request.param == "segment":
        module = segment_analytics
        module.host = live_server.url
    else:
        module = rudder_analytics
        module.dataPlaneUrl = live_server.url
    module.write_key = write_key.raw_key
    module.default_client = None
    yield module
    module.shutdown()
    module.default_client = None


def stored(message_id: str, key: services.CreatedKey, source: str = "segment") -> Event:
    event_id = event_id_for(source=source, key_id=key.key.pk, message_id=message_id, message=None)
    return Event.objects.get(event_id=event_id)


@pytest.mark.parametrize("sdk_client", SDKS, indirect=True)
def test_track_page_and_ecommerce_are_stored_with_mapped_fields(sdk_client, write_key):
    client = sdk_client
    client.track(
        user_id="u-1",
        event="Newsletter Signup",
        properties={"plan": "pro"},
        message_id="m-custom",
    )
    client.page(
        anonymous_id="anon-1",
        name="Laptop",
        properties={"url": "https://shop.example/p/laptop", "referrer": "https://google.com/"},
        context={"userAgent": UA_IPHONE, "ip": "81.2.69.160", "locale": "en-GB"},
        message_id="m-page",
    )
    client.track(
        user_id="u-1",
        event="Order Completed",
        properties={
            "order_id": "o-1",
            "revenue": 42.5,
            "currency": "eur",
            "products": [{"product_id": "p-1", "price": 42.5, "quantity": 1}],
        },
        message_id="m-order",
    )
    client.flush()

    custom = stored("m-custom", write_key)
    assert (custom.event_type, custom.user_id, custom.source) == (
        "Newsletter Signup",
        "u-1",
        "segment",
    )
    assert custom.properties == {"plan": "pro"}
    assert event_original(custom)["messageId"] == "m-custom"
    assert custom.original is None and custom.original_batch_id is not None  # once (ADR 0041)

    page = stored("m-page", write_key)
    assert (page.event_type, page.anonymous_id, page.user_id) == ("page_view", "anon-1", "")
    assert page.page_url == "https://shop.example/p/laptop"
    assert page.referrer == "https://google.com/"
    assert page.device_type == "mobile"  # derived from context.userAgent
    assert page.country == "GB"  # derived from context.ip (81.2.69.160 is in the UK)
    assert {"device_type", "country", "session_id"} <= set(page.derived)
    assert page.properties["locale"] == "en-GB"

    order = stored("m-order", write_key)
    assert (order.event_type, order.order_id, order.currency) == ("purchase", "o-1", "EUR")
    assert str(order.revenue) == "42.50"
    # The fields that became columns are stored once (ADR 0042); the original keeps them.
    assert order.properties == {"products": [{"product_id": "p-1", "price": 42.5, "quantity": 1}]}
    assert event_original(order)["properties"]["revenue"] == 42.5


@pytest.mark.parametrize("sdk_client", SDKS, indirect=True)
def test_resending_a_message_id_stores_it_once(sdk_client, write_key):
    client = sdk_client
    for _ in range(2):
        client.track(user_id="u-2", event="Clicked", message_id="m-twice")
        client.flush()
    assert Event.objects.filter(user_id="u-2").count() == 1


@pytest.mark.parametrize("sdk_client", SDKS, indirect=True)
def test_client_clock_skew_is_corrected(sdk_client, write_key, monkeypatch):
    """A client whose clock is an hour fast: the event, 10 s before it was sent by that clock,
    is stored 10 s before it was received."""
    module = segment_request if sdk_client is segment_analytics else rudder_request
    skewed_now = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)

    class FastClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return skewed_now

    monkeypatch.setattr(module, "datetime", FastClock)
    client = sdk_client
    happened = skewed_now - dt.timedelta(seconds=10)
    client.track(user_id="u-3", event="Skewed", timestamp=happened, message_id="m-skew")
    client.flush()
    event = stored("m-skew", write_key)
    assert event.client_timestamp == happened
    assert event.timestamp == event.received_at - dt.timedelta(seconds=10)


@pytest.mark.parametrize("sdk_client", SDKS, indirect=True)
def test_identify_and_alias_reach_people(sdk_client, write_key):
    client = sdk_client
    client.identify(user_id="u-4", anonymous_id="anon-4", traits={"email": "x@example.com"})
    client.alias(previous_id="anon-older", user_id="u-4")
    client.flush()
    person = Person.objects.get(distinct_id="u-4")
    assert person.traits["email"] == "x@example.com"
    linked = set(PersonLink.objects.filter(user_id="u-4").values_list("linked_id", flat=True))
    assert linked == {"anon-4", "anon-older"}


@pytest.mark.parametrize("sdk_client", SDKS, indirect=True)
def test_a_bad_message_is_quarantined_with_its_original(sdk_client, write_key):
    """An Order Completed without order_id or revenue is refused by our purchase rules; the
    quarantine row keeps the message as the SDK sent it. The good message beside it is stored."""
    client = sdk_client
    bad_id = str(uuid.uuid4())
    client.track(user_id="u-5", event="Order Completed", properties={"x": 1}, message_id=bad_id)
    client.track(user_id="u-5", event="Fine", message_id="m-fine")
    client.flush()
    assert stored("m-fine", write_key).event_type == "Fine"
    rejected = RejectedEvent.objects.get()
    assert {(reason["field"], reason["rule"]) for reason in rejected.reasons} >= {
        ("order_id", "required"),
        ("revenue", "required"),
    }
    original = rejected.original if hasattr(rejected, "original") else rejected.payload
    assert original["messageId"] == bad_id
    assert original["event"] == "Order Completed"
