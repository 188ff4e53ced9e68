"""Replaying quarantined tracker messages (ADR 0029): a real SDK's message refused by a stored
rule is kept as the SDK sent it; once the rule is fixed, the replay translates it again through
its protocol and stores it exactly once, under the event id its first delivery would have had
(so the SDK re-sending it later is a duplicate), with its source and original message. A
request refused as a whole stays quarantined, saying it is not one message."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable

import posthog
import pytest
import requests
import segment.analytics as segment_analytics
from snowplow_tracker import EmitterConfiguration, Snowplow, StructuredEvent, Subject, Tracker

from events import services
from events.models import Event, RejectedEvent
from events.original_selectors import event_original
from quality.services import replay
from quality.services.rules import rule_save
from tests.factories import QualityRuleFactory
from trackers.event_ids import event_id_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]
UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
_namespaces = itertools.count()
# The custom event's id in each SDK: the same on every send, as when an SDK re-sends a message.
VIDEO_ID = "5d1f0c52-31a4-4c1e-9a7b-0b6b0c7e2f10"


@pytest.fixture
def key():
    return services.ingestion_key_create(name="sdk", scopes=["write"])


@pytest.fixture
def names_rule():
    """A closed taxonomy: only page views allowed, so the SDKs' custom event is refused."""
    return QualityRuleFactory(
        name="known-names",
        kind="allowed_values",
        field="event_type",
        params={"values": ["page_view"]},
    )


def _segment(live_server, key) -> tuple[str, str]:
    segment_analytics.host, segment_analytics.write_key = live_server.url, key.raw_key
    segment_analytics.default_client = None
    try:
        segment_analytics.page(anonymous_id="anon-1", name="Home", message_id="m-home")
        segment_analytics.track(
            user_id="u-1",
            event="Video Played",
            properties={"title": "intro"},
            context={"userAgent": UA_IPHONE},
            message_id="m-video",
        )
        segment_analytics.flush()
    finally:
        segment_analytics.shutdown()
        segment_analytics.default_client = None
    return "m-video", "Video Played"


def _posthog(live_server, key, **options) -> tuple[str, str]:
    client = posthog.Posthog(key.raw_key, host=live_server.url, **options)
    client.capture("$pageview", distinct_id="u-1")
    sent = client.capture(
        "Video Played",
        distinct_id="u-1",
        properties={"title": "intro", "$raw_user_agent": UA_IPHONE},
        uuid=VIDEO_ID,
    )
    client.flush()
    client.shutdown()
    return sent, "Video Played"


def _snowplow(live_server, key) -> tuple[str, str]:
    # The Python tracker draws each event's id itself (a re-send keeps it): fix it here.
    original_uuid = Tracker.get_uuid
    Tracker.get_uuid = staticmethod(lambda: VIDEO_ID)
    tracker = Snowplow.create_tracker(
        namespace=f"replay{next(_namespaces)}",
        endpoint=live_server.url,
        app_id=key.raw_key,
        emitter_config=EmitterConfiguration(),
    )
    try:
        user = Subject().set_user_id("u-1").set_useragent(UA_IPHONE)
        sent = tracker.track(
            StructuredEvent(category="media", action="video_played", event_subject=user)
        )
        tracker.flush()
    finally:
        Snowplow.reset()
        Tracker.get_uuid = original_uuid
    return sent, "video_played"


def _posthog_v1(live_server, key) -> tuple[str, str]:
    return _posthog(live_server, key, capture_mode="v1")


# sender -> (its protocol, how it sends)
SENDERS: dict[str, tuple[str, Callable]] = {
    "segment": ("segment", _segment),
    "posthog": ("posthog", _posthog),
    "posthog-v1": ("posthog", _posthog_v1),
    "snowplow": ("snowplow", _snowplow),
}
# The device each protocol's mapping gives the message: its User-Agent (Segment, PostHog), the
# tracker's platform `p=pc` before any User-Agent (Snowplow, ADR 0017).
DEVICES = {"segment": "mobile", "posthog": "mobile", "snowplow": "desktop"}


@pytest.mark.parametrize("sender", list(SENDERS))
def test_a_fixed_rule_lets_a_quarantined_sdk_message_in_exactly_once(
    live_server, key, names_rule, sender
):
    source, send = SENDERS[sender]
    message_id, name = send(live_server, key)
    event_id = uuid.UUID(
        event_id_for(source=source, key_id=key.key.pk, message_id=message_id, message=None)
    )
    assert not Event.objects.filter(event_id=event_id).exists()
    row = RejectedEvent.objects.get()
    assert row.source == source and row.translation is not None
    assert ("event_type", "known-names") in {(r["field"], r["rule"]) for r in row.reasons}
    original = json.loads(row.raw_payload)  # kept as the SDK sent it
    assert message_id in json.dumps(original)

    names_rule.params = {"values": ["page_view", name]}
    rule_save(names_rule)
    job = replay.replay_job_create([row.pk])
    job.refresh_from_db()
    assert (job.status, job.accepted, job.still_rejected) == ("done", 1, 0), job.error

    event = Event.objects.get(event_id=event_id)
    assert (event.event_type, event.user_id, event.source) == (name, "u-1", source)
    assert event.device_type == DEVICES[source]  # mapped as on its first delivery
    assert event_original(event) == original
    row.refresh_from_db()
    assert (row.status, row.replay_count) == ("replayed", 1)

    again = replay.quarantine_replay([row.pk])
    assert (again.accepted, again.skipped) == (0, 1)
    send(live_server, key)  # the SDK sends the same messages again: duplicates
    assert Event.objects.filter(event_id=event_id).count() == 1
    assert Event.objects.filter(event_type=name).count() == 1
    assert RejectedEvent.objects.filter(status="quarantined").count() == 0


def test_a_still_refused_message_keeps_its_protocol_and_new_reasons(live_server, key, names_rule):
    """Replayed under a rule still refusing it: quarantined again, replayable later."""
    _segment(live_server, key)
    row = RejectedEvent.objects.get()
    names_rule.params = {"values": ["page_view", "Video Started"]}
    rule_save(names_rule)
    counts = replay.quarantine_replay([row.pk])
    assert (counts.accepted, counts.still_rejected) == (0, 1)
    row.refresh_from_db()
    assert (row.status, row.source, row.replay_count) == ("quarantined", "segment", 1)
    assert "Video Started" in row.reasons[0]["message"]
    assert Event.objects.filter(source="segment").count() == 1  # the page view only


def test_a_request_refused_as_a_whole_is_not_replayed_as_a_message(live_server, key):
    answer = requests.post(
        live_server.url + "/v1/batch",
        json={"batch": "not a list"},
        auth=(key.raw_key, ""),
        timeout=10,
    )
    assert answer.status_code == 400
    row = RejectedEvent.objects.get()
    assert (row.source, row.translation) == ("segment", None)
    counts = replay.quarantine_replay([row.pk])
    assert (counts.accepted, counts.still_rejected) == (0, 1)
    row.refresh_from_db()
    assert [(r["field"], r["rule"]) for r in row.reasons] == [("message", "replayable")]
    assert Event.objects.count() == 0


def test_the_quarantine_admin_filters_by_protocol(live_server, key, names_rule, admin_client):
    """An analyst finds the Segment messages to replay: the quarantine lists and filters by
    source, and a row shows what its replay will translate with."""
    _segment(live_server, key)
    row = RejectedEvent.objects.get()
    listing = admin_client.get("/admin/events/rejectedevent/", {"source": "segment"})
    assert listing.status_code == 200
    assert f"/admin/events/rejectedevent/{row.pk}/change/" in listing.content.decode()
    other = admin_client.get("/admin/events/rejectedevent/", {"source": "posthog"})
    assert f"/admin/events/rejectedevent/{row.pk}/change/" not in other.content.decode()
    detail = admin_client.get(f"/admin/events/rejectedevent/{row.pk}/change/")
    assert detail.status_code == 200 and "user_agent" in detail.content.decode()
