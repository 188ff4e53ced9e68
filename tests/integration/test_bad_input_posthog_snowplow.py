"""The bad-input battery on the PostHog and Snowplow endpoints, through the site's WSGI
application on both request paths: malformed, oversize, gzip bombs, wrong envelopes and wrong
types. A request refused as a whole is a 4xx naming field and rule, kept as one rejected row;
a bad message inside a batch is quarantined with the message as sent while the rest is stored
(a 200: the SDKs would otherwise retry it forever); never a 5xx, nothing accepted lost."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
import zlib

import pytest

from events.models import Event, RejectedEvent
from tests.helpers import assert_kept, assert_refused

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres", "dev_mode")]

POSTHOG_PATHS = ["/batch/", "/capture/", "/e/", "/i/v0/e/", "/i/v0/ai/batch/"]
TP2 = "/com.snowplowanalytics.snowplow/tp2"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
GZIP = {"HTTP_CONTENT_ENCODING": "gzip"}


def posthog_message(**fields):
    base = {"event": "$pageview", "distinct_id": "u", "uuid": str(uuid.uuid4())}
    return base | {"timestamp": "2026-01-05T10:00:00Z"} | fields


def snowplow_event(**fields):
    return {"e": "pv", "eid": str(uuid.uuid4()), "dtm": "1767607200000", "uid": "u"} | fields


def _gzip_bomb(inflated_bytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(inflated_bytes >> 20)]
    return b"".join(parts) + compressor.flush()


@pytest.mark.parametrize("path", [*POSTHOG_PATHS, TP2])
@pytest.mark.parametrize(
    "body",
    [b'{"batch": ', b"not json", b"\xff\xfe{", b'{"a": NaN}', b"[" * 5000 + b"]" * 5000, b""],
    ids=["truncated", "text", "not-utf8", "nan", "nested", "empty"],
)
def test_malformed_bodies_are_400_and_kept(ingest_client, path, body):
    response = ingest_client.post_raw(path, body)
    assert_kept(assert_refused(response, 400, "body", "json"), "body", "json")
    assert Event.objects.count() == 0


@pytest.mark.parametrize("path", [*POSTHOG_PATHS, TP2])
def test_gzip_bombs_stop_at_the_limit_with_413(ingest_client, path):
    response = ingest_client.post_raw(path, _gzip_bomb(16 << 20), **GZIP)
    refused = assert_refused(response, 413, "body", "max_size")
    assert len(assert_kept(refused, "body", "max_size").raw_payload.encode()) <= 65_536 * 4


@pytest.mark.parametrize("query", ["?compression=gzip-js", ""], ids=["flagged", "unflagged"])
def test_posthog_js_gzip_in_the_query_or_unflagged_is_bounded_too(ingest_client, query):
    """posthog-js flags gzip with ?compression=gzip-js, not a header, or (1.2xx on) not at all,
    the body's gzip magic telling: the same inflate cap either way."""
    response = ingest_client.post_raw(f"/e/{query}", _gzip_bomb(16 << 20), "text/plain")
    assert_refused(response, 413, "body", "max_size")


def test_posthog_js_unflagged_gzip_that_is_broken_is_400_naming_content_encoding(ingest_client):
    body = gzip.compress(json.dumps([posthog_message()]).encode())[:-6]
    response = ingest_client.post_raw("/e/", body, "text/plain")
    assert_kept(
        assert_refused(response, 400, "Content-Encoding", "gzip"), "Content-Encoding", "gzip"
    )


@pytest.mark.parametrize("path", [*POSTHOG_PATHS, TP2])
def test_bodies_over_the_limit_are_413(ingest_client, path):
    body = json.dumps({"batch": [], "data": [], "pad": "x" * 1_100_000}).encode()
    assert_kept(
        assert_refused(ingest_client.post_raw(path, body), 413, "body", "max_size"),
        "body",
        "max_size",
    )


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ("batch", "body", "object"),
        (42, "body", "object"),
        ({}, "batch", "required"),
        ({"batch": {"event": "x"}}, "batch", "list"),
        ({"batch": "x"}, "batch", "list"),
    ],
)
def test_posthog_envelopes_of_the_wrong_shape_are_400_and_kept(ingest_client, payload, field, rule):
    response = ingest_client.post_json("/batch/", payload)
    assert_kept(assert_refused(response, 400, field, rule), field, rule)


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ([snowplow_event()], "body", "object"),
        ({"data": [snowplow_event()]}, "schema", "payload_data"),
        ({"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": []}, "schema", "payload_data"),
        ({"schema": PAYLOAD_DATA, "data": {"e": "pv"}}, "data", "list"),
        ({"schema": PAYLOAD_DATA}, "data", "list"),
    ],
)
def test_snowplow_envelopes_of_the_wrong_shape_are_400_and_kept(
    ingest_client, payload, field, rule
):
    response = ingest_client.post_json(TP2, payload)
    assert_kept(assert_refused(response, 400, field, rule), field, rule)


def test_too_many_events_are_413(ingest_client, settings):
    settings.INGEST_MAX_BATCH_EVENTS = 3
    posthog = ingest_client.post_json("/batch/", {"batch": [posthog_message()] * 4})
    assert_refused(posthog, 413, "batch", "max_items")
    snowplow = ingest_client.post_json(
        TP2, {"schema": PAYLOAD_DATA, "data": [snowplow_event()] * 4}
    )
    assert_refused(snowplow, 413, "data", "max_items")
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("message", "field", "rule"),
    [
        ("not an object", "event", "object"),
        ({"event": 12, "distinct_id": "u", "uuid": "x"}, "event_type", "string"),
        ({"event": ["a", "list"], "distinct_id": "u", "uuid": "x"}, "event_type", "string"),
        (posthog_message(timestamp="yesterday"), "timestamp", "iso8601"),
        (posthog_message(event="Order Completed"), "order_id", "required"),
        (posthog_message(event="Product Added", properties={"price": "a lot"}), "price", "number"),
        ({"event": "$pageview", "uuid": "x", "timestamp": "2026-01-05T10:00:00Z"}, "user_id", None),
        # Identity calls the person records cannot hold: once a 500 from the id graph.
        (posthog_message(event="$identify", distinct_id="u" * 129), "distinct_id", "max_length"),
        (
            posthog_message(event="$identify", properties={"$anon_distinct_id": "a\x00b"}),
            "$anon_distinct_id",
            "no_nul_bytes",
        ),
        (
            posthog_message(event="$create_alias", properties={"alias": "x" * 200}),
            "alias",
            "max_length",
        ),
        (posthog_message(event="$set", properties={"$set": {"bio": "x" * 9000}}), "traits", None),
        (posthog_message(event="$set", properties={"$set": {"n": "a\x00"}}), "traits", None),
    ],
)
def test_a_bad_posthog_message_is_quarantined_as_sent_and_the_rest_stored(
    ingest_client, message, field, rule
):
    response = ingest_client.post_json("/batch/", {"batch": [message, posthog_message()]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    errors = body["results"][0]["errors"]
    assert any(e["field"] == field and rule in (None, e["rule"]) for e in errors), errors
    rejected = RejectedEvent.objects.get(pk=body["results"][0]["rejected_id"])
    kept = json.loads(rejected.raw_payload)
    assert kept == message or kept.get("original") == message
    assert Event.objects.count() == 1


def test_posthog_results_name_each_event_by_its_place_in_the_batch(ingest_client):
    """An identity call between events takes no result of its own: the events' `index` is
    still their place in the batch, so a client finds the message that was refused."""
    identify = posthog_message(event="$identify", distinct_id="user-9")
    identify["properties"] = {"$anon_distinct_id": "anon-9"}
    bad = posthog_message(event="Order Completed")  # no order_id
    batch = [posthog_message(), identify, bad, posthog_message()]
    response = ingest_client.post_json("/batch/", {"batch": batch})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["identity_calls"] == 1
    assert [(r["index"], r["status"]) for r in body["results"]] == [
        (0, "accepted"),
        (2, "rejected"),
        (3, "accepted"),
    ]


@pytest.mark.parametrize(
    ("event", "field", "rule"),
    [
        ("not an object", "event", "object"),
        (snowplow_event(e="zz"), "e", "allowed_values"),
        (snowplow_event(dtm="yesterday"), "dtm", "epoch_millis"),
        (snowplow_event(e="ue", ue_px="!!!"), "ue_px", "json"),
        (snowplow_event(cx=base64.b64encode(b"{nope").decode()), "cx", "json"),
        (snowplow_event(e="se"), "se_ac", "required"),
        (snowplow_event(url=["not", "text"], eid=7), None, None),
        (snowplow_event(dtm="\u00b2"), "dtm", "epoch_millis"),  # a digit int() refuses: once a 500
        (snowplow_event(p={"not": "text"}), None, None),  # an unhashable platform: once a 500
    ],
)
def test_a_bad_snowplow_event_is_quarantined_as_sent_and_the_rest_stored(
    ingest_client, event, field, rule
):
    body = {"schema": PAYLOAD_DATA, "data": [event, snowplow_event()]}
    response = ingest_client.post_json(TP2, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["accepted"] == 1 + (answer["rejected"] == 0)
    if field is not None:
        errors = answer["results"][0]["errors"]
        assert any((e["field"], e["rule"]) == (field, rule) for e in errors), errors
        rejected = RejectedEvent.objects.get(pk=answer["results"][0]["rejected_id"])
        kept = json.loads(rejected.raw_payload)
        assert kept == event or kept.get("original") == event


@pytest.mark.parametrize(
    "query",
    ["", "e=zz", "e=ue&ue_px=%%%", "dtm=-1&e=pv", "e=pv&uid=" + "x" * 5000, "e=se&se_va=NaN"],
)
def test_the_pixel_answers_a_gif_for_any_query_and_quarantines_what_it_cannot_use(
    ingest_client, query
):
    response = ingest_client.get("/i?" + query)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert Event.objects.count() + RejectedEvent.objects.count() == 1


def test_posthog_js_bodies_gzip_in_the_query_and_base64_forms_are_stored(ingest_client):
    message = posthog_message()
    gz = ingest_client.post_raw(
        "/e/?compression=gzip-js", gzip.compress(json.dumps([message]).encode()), "text/plain"
    )
    assert gz.status_code == 200 and gz.json()["accepted"] == 1, gz.content
    # posthog-js 1.449: gzip, text/plain, nothing in the query says so
    unflagged = gzip.compress(json.dumps([posthog_message()]).encode())
    bare = ingest_client.post_raw("/e/", unflagged, "text/plain")
    assert bare.status_code == 200 and bare.json()["accepted"] == 1, bare.content
    encoded = base64.b64encode(json.dumps(posthog_message()).encode()).decode()
    form = ingest_client.post_raw(
        "/i/v0/e/", f"data={encoded}".encode(), "application/x-www-form-urlencoded"
    )
    assert form.status_code == 200 and form.json()["accepted"] == 1, form.content
    assert Event.objects.count() == 3
