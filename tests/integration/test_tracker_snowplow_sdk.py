"""The real snowplow-tracker SDK (1.x), configured as its docs say with the collector's host
and an app id (our key, ADR 0017), against a live server, by POST (tp2) and GET (the pixel):
what it sends is stored (ids, names, mapped and derived fields, skew corrected), a re-send is
a duplicate, a bad event is quarantined with its original."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
import uuid

import pytest
import requests
import snowplow_tracker.emitters
import snowplow_tracker.tracker
from snowplow_tracker import (
    EmitterConfiguration,
    PageView,
    SelfDescribing,
    SelfDescribingJson,
    Snowplow,
    StructuredEvent,
    Subject,
)

from events import services
from events.models import Event, RejectedEvent
from trackers.event_ids import event_id_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]
ECOM = "iglu:com.snowplowanalytics.snowplow.ecommerce"
ACTION = f"{ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2"
_names = itertools.count()


@pytest.fixture
def key():
    return services.ingestion_key_create(name="snowplow", scopes=["write"])


@pytest.fixture(autouse=True)
def _trackers_reset():
    yield
    Snowplow.reset()


def tracker_for(live_server, key, method="post", **emitter):
    """Snowplow.create_tracker(namespace, endpoint, method, app_id): the documented setup."""
    return Snowplow.create_tracker(
        namespace=f"ns{next(_names)}",
        endpoint=live_server.url,
        method=method,
        app_id=key.raw_key,
        emitter_config=EmitterConfiguration(**emitter),
    )


def stored(key, eid: str) -> Event:
    event_id = event_id_for(source="snowplow", key_id=key.key.id, message_id=eid, message=None)
    return Event.objects.get(event_id=uuid.UUID(event_id))


def action(kind, *entities):
    context = [
        SelfDescribingJson(f"{ECOM}/{name}/jsonschema/1-0-0", data) for name, data in entities
    ]
    return SelfDescribing(SelfDescribingJson(ACTION, {"type": kind}), context=context)


def test_post_events_are_stored_with_their_mapped_fields(live_server, key):
    tracker = tracker_for(live_server, key)
    user = Subject().set_user_id("user-1")
    page = tracker.track(PageView(page_url="https://shop.example/p/1", event_subject=user))
    signup = tracker.track(StructuredEvent(category="shop", action="newsletter_signup"))
    product = ("product", {"id": "sku-1", "price": 12.5, "currency": "USD", "category": "hats"})
    viewed = tracker.track(action("product_view", product))
    added = tracker.track(action("add_to_cart", ("product", {**product[1], "quantity": 3})))
    order = ("transaction", {"transaction_id": "o-5", "revenue": 37.5, "currency": "USD"})
    bought = tracker.track(action("transaction", order, product))
    tracker.flush()

    assert Event.objects.count() == 5
    pageview = stored(key, page)
    assert (pageview.event_type, pageview.user_id) == ("page_view", "user-1")
    assert pageview.page_url == "https://shop.example/p/1"
    assert pageview.device_type == "desktop"  # the Python tracker's platform: pc
    assert stored(key, signup).event_type == "newsletter_signup"
    # No Subject: the anonymous id a cookieless Snowplow collector records.
    assert stored(key, signup).anonymous_id == "00000000-0000-4000-a000-000000000000"
    assert stored(key, signup).properties["ca"] == "shop"
    view = stored(key, viewed)
    assert (view.event_type, view.product_id, str(view.price)) == ("product_view", "sku-1", "12.50")
    cart = stored(key, added)
    assert (cart.event_type, cart.quantity, cart.category) == ("add_to_cart", 3, "hats")
    purchase = stored(key, bought)
    assert (purchase.event_type, purchase.order_id, str(purchase.revenue)) == (
        "purchase",
        "o-5",
        "37.50",
    )
    assert purchase.currency == "USD"


def test_get_pixel_is_stored_and_answered_with_a_gif(live_server, key):
    tracker = tracker_for(live_server, key, method="get")
    sent = tracker.track(PageView(page_url="https://shop.example/"))
    tracker.flush()
    assert stored(key, sent).event_type == "page_view"
    answer = requests.get(
        live_server.url + "/i",
        params={"e": "pv", "aid": key.raw_key, "eid": str(uuid.uuid4()), "url": "https://x/"},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/gif"
    assert answer.content.startswith(b"GIF89a")
    assert Event.objects.count() == 2


def test_clock_skew_is_corrected_from_dtm_and_stm(live_server, key, monkeypatch):
    """A device clock an hour ahead: stored at received - (stm - dtm); dtm is kept."""

    class DeviceClock:
        @staticmethod
        def time():
            return time.time() + 3600

    monkeypatch.setattr(snowplow_tracker.tracker, "time", DeviceClock)
    monkeypatch.setattr(snowplow_tracker.emitters, "time", DeviceClock)
    tracker = tracker_for(live_server, key)
    sent = tracker.track(PageView(page_url="https://shop.example/"))
    tracker.flush()

    event = stored(key, sent)
    now = dt.datetime.now(dt.UTC)
    assert event.client_timestamp > now + dt.timedelta(minutes=55)
    assert abs(event.timestamp - event.received_at) < dt.timedelta(seconds=5)


def test_a_resent_batch_is_stored_once(live_server, key):
    """The emitter re-sends exactly what it sent (as on a retry): every event a duplicate."""
    sent_payloads = []
    tracker = tracker_for(live_server, key, on_success=sent_payloads.extend)
    tracker.track(PageView(page_url="https://shop.example/a"))
    tracker.track(StructuredEvent(category="c", action="clicked"))
    tracker.flush()
    assert len(sent_payloads) == 2 and Event.objects.count() == 2
    tracker.emitters[0].send_events([dict(payload) for payload in sent_payloads])
    assert Event.objects.count() == 2


def test_a_bad_event_is_quarantined_with_its_original(live_server, key):
    """A transaction without its transaction entity has no order id or revenue: refused, kept
    as the tracker sent it; the page view beside it is stored; the tracker is told 200."""
    failures = []
    tracker = tracker_for(live_server, key, on_failure=lambda n, evts: failures.append(evts))
    bad = tracker.track(action("transaction"))
    tracker.track(PageView(page_url="https://shop.example/"))
    tracker.flush()

    assert failures == [] and Event.objects.count() == 1
    rejected = RejectedEvent.objects.get()
    assert ("order_id", "required") in {(r["field"], r["rule"]) for r in rejected.reasons}
    kept = json.loads(rejected.raw_payload)
    original = kept.get("original", kept)
    assert original["eid"] == bad and original["e"] == "ue"


def test_a_wrong_app_id_is_refused_and_nothing_stored(live_server, key):
    body = {
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [{"e": "pv", "aid": "not-a-key", "eid": str(uuid.uuid4())}],
    }
    answer = requests.post(
        live_server.url + "/com.snowplowanalytics.snowplow/tp2", json=body, timeout=10
    )
    assert answer.status_code in (401, 403)
    assert Event.objects.count() == 0
