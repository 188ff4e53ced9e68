"""The bad-input battery on the Segment endpoints and on gzip bodies of every JSON ingestion
endpoint, through the site's WSGI application on both request paths: malformed, oversize
(inflated), gzip bombs and broken streams, wrong types. Always a 4xx naming field and rule,
never a 5xx; a refused request is kept as one rejected row; a refused message is quarantined
with the message as sent, while the rest of its batch is stored."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import pytest

from events import services
from events.models import Event, RejectedEvent
from tests.factories import event_payload
from tests.helpers import assert_kept, assert_refused

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres", "dev_mode")]

SEGMENT_PATHS = [f"/v1/{call}" for call in ("batch", "track", "page", "screen", "identify")]
SEGMENT_PATHS += ["/v1/group", "/v1/alias"]
OURS = ["/events", "/events/batch"]


def _gzip_bomb(inflated_bytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(inflated_bytes >> 20)]
    return b"".join(parts) + compressor.flush()


GZIP = {"HTTP_CONTENT_ENCODING": "gzip"}


@pytest.mark.parametrize("path", SEGMENT_PATHS)
@pytest.mark.parametrize(
    "body",
    [b'{"batch": ', b"not json", b"\xff\xfe{", b'{"a": NaN}', b"[" * 5000 + b"]" * 5000, b""],
    ids=["truncated", "text", "not-utf8", "nan", "nested", "empty"],
)
def test_malformed_bodies_are_400_and_kept(ingest_client, path, body):
    response = ingest_client.post_raw(path, body)
    assert_kept(assert_refused(response, 400, "body", "json"), "body", "json")
    assert Event.objects.count() == 0


@pytest.mark.parametrize("path", SEGMENT_PATHS + OURS)
@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (b"plain text, not gzip", "gzip"),
        (gzip.compress(b'{"batch": []}')[:-5], "gzip"),
        (gzip.compress(b"{}") + b"trailing junk", "gzip"),
    ],
    ids=["not-gzip", "truncated", "trailing-junk"],
)
def test_bad_gzip_streams_are_400_naming_content_encoding(ingest_client, path, body, rule):
    response = ingest_client.post_raw(path, body, **GZIP)
    refused = assert_refused(response, 400, "Content-Encoding", rule)
    assert_kept(refused, "Content-Encoding", rule)


@pytest.mark.parametrize("path", SEGMENT_PATHS + OURS)
def test_gzip_bombs_stop_at_the_limit_with_413(ingest_client, path):
    """16 MB of spaces in about 16 KB of gzip: refused once the inflated body passes the
    endpoint's limit; what is kept is the compressed prefix, bounded."""
    response = ingest_client.post_raw(path, _gzip_bomb(16 << 20), **GZIP)
    refused = assert_refused(response, 413, "body", "max_size")
    assert "inflates past" in refused["detail"]
    assert len(assert_kept(refused, "body", "max_size").raw_payload.encode()) <= 65_536 * 4


@pytest.mark.parametrize("path", SEGMENT_PATHS + OURS)
@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
def test_other_content_encodings_are_415_naming_the_ones_read(ingest_client, path, encoding):
    response = ingest_client.post_raw(path, b"{}", HTTP_CONTENT_ENCODING=encoding)
    refused = assert_refused(response, 415, "Content-Encoding", "supported_encoding")
    assert "gzip, deflate or none" in refused["detail"]
    assert_kept(refused, "Content-Encoding", "supported_encoding")


DEFLATE = {"HTTP_CONTENT_ENCODING": "deflate"}


@pytest.mark.parametrize("path", SEGMENT_PATHS + OURS)
@pytest.mark.parametrize(
    "body",
    [b"plain text", zlib.compress(b'{"batch": []}')[:-4], zlib.compress(b"{}") + b"junk"],
    ids=["not-deflate", "truncated", "trailing-junk"],
)
def test_bad_deflate_streams_are_400_naming_content_encoding(ingest_client, path, body):
    response = ingest_client.post_raw(path, body, **DEFLATE)
    refused = assert_refused(response, 400, "Content-Encoding", "deflate")
    assert_kept(refused, "Content-Encoding", "deflate")


@pytest.mark.parametrize("path", SEGMENT_PATHS + OURS)
def test_deflate_bombs_stop_at_the_limit_with_413(ingest_client, path):
    """The same inflate cap as gzip: 16 MB of spaces in about 16 KB of deflate."""
    compressor = zlib.compressobj(9)
    bomb = b"".join(compressor.compress(b" " * (1 << 20)) for _ in range(16))
    response = ingest_client.post_raw(path, bomb + compressor.flush(), **DEFLATE)
    assert_kept(assert_refused(response, 413, "body", "max_size"), "body", "max_size")


def test_deflate_bodies_are_stored(ingest_client):
    """Content-Encoding: deflate (the zlib format, as CompressionStream("deflate") makes it)."""
    body = zlib.compress(json.dumps({"events": [event_payload()]}).encode())
    response = ingest_client.post_raw("/events/batch", body, **DEFLATE)
    assert response.status_code == 200, response.content
    message = {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m-1"}
    segment = ingest_client.post_raw(
        "/v1/track", zlib.compress(json.dumps(message).encode()), **DEFLATE
    )
    assert segment.status_code == 200, segment.content
    assert Event.objects.count() == 2


def test_our_batch_accepts_gzip(ingest_client):
    """RudderStack's SDKs gzip by default; our own endpoints take gzip as well."""
    body = gzip.compress(json.dumps({"events": [event_payload()]}).encode())
    response = ingest_client.post_raw("/events/batch", body, **GZIP)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1


def test_limits_apply_to_the_inflated_body(ingest_client):
    """A single event whose gzip is tiny but which inflates past 32 KB is 413."""
    payload = event_payload(page_url="/" + "x" * 40_000)
    response = ingest_client.post_raw(
        "/events", gzip.compress(json.dumps(payload).encode()), **GZIP
    )
    assert_refused(response, 413, "body", "max_size")


def test_segment_batch_over_500_kb_is_413(ingest_client):
    messages = [{"type": "track", "event": "X", "userId": "u", "p": "x" * 1000}] * 600
    response = ingest_client.post_json("/v1/batch", {"batch": messages})
    assert_kept(assert_refused(response, 413, "body", "max_size"), "body", "max_size")
    assert Event.objects.count() == 0


def test_segment_single_call_over_32_kb_is_413(ingest_client):
    message = {"event": "X", "userId": "u", "properties": {"p": "x" * 33_000}}
    response = ingest_client.post_json("/v1/track", message)
    assert_refused(response, 413, "body", "max_size")


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ([], "body", "object"),
        ("batch", "body", "object"),
        ({}, "batch", "required"),
        ({"batch": {"type": "track"}}, "batch", "list"),
        ({"batch": "x"}, "batch", "list"),
    ],
)
def test_segment_batch_of_the_wrong_shape_is_400(ingest_client, payload, field, rule):
    response = ingest_client.post_json("/v1/batch", payload)
    assert_kept(assert_refused(response, 400, field, rule), field, rule)


@pytest.mark.parametrize("path", SEGMENT_PATHS[1:])
@pytest.mark.parametrize("payload", [[], "x", 42, None, [{"userId": "u"}]])
def test_segment_single_call_that_is_not_an_object_is_400(ingest_client, path, payload):
    response = ingest_client.post_json(path, payload)
    assert_refused(response, 400, "body", "object")


@pytest.mark.parametrize(
    ("message", "field", "rule"),
    [
        (42, "message", "object"),
        ({"type": 5, "userId": "u"}, "type", "allowed_values"),
        ({"type": "track", "event": "X"}, "userId", "required"),
        ({"type": "track", "userId": "u", "event": ["X"]}, "event", "required"),
        ({"type": "alias", "userId": "u"}, "previousId", "required"),
        ({"type": "identify", "userId": "u", "traits": "x"}, "traits", "object"),
        (
            {"type": "track", "event": "X", "userId": "u", "big": "x" * 33_000},
            "message",
            "max_size",
        ),
        (  # beyond Decimal's 28 digits: once a 500 from the money rounding
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": "u",
                "properties": {"price": 1e30},
            },
            "price",
            "range",
        ),
    ],
)
def test_a_bad_message_is_quarantined_as_sent_and_the_rest_stored(
    ingest_client, message, field, rule
):
    """One bad message does not refuse its batch: it is kept with the message as sent."""
    good = {"type": "identify", "userId": "u-ok", "traits": {"plan": "pro"}}
    response = ingest_client.post_json("/v1/batch", {"batch": [message, good]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert (body["accepted"], body["rejected"]) == (1, 1)
    result = body["results"][0]
    assert result["status"] == "rejected"
    assert (field, rule) in {(e["field"], e["rule"]) for e in result["errors"]}
    rejected = RejectedEvent.objects.get(pk=result["rejected_id"])
    assert rejected.payload == message


def test_a_wrong_key_is_401_even_where_anonymous_ingestion_is_allowed(ingest_client):
    basic = base64.b64encode(b"ek_wrong:").decode()
    response = ingest_client.post_json(
        "/v1/batch", {"batch": []}, HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert_refused(response, 401, "Authorization", "valid_key")
    response = ingest_client.post_json("/v1/batch", {"batch": [], "writeKey": "ek_wrong"})
    assert_refused(response, 401, "Authorization", "valid_key")


@pytest.mark.parametrize("how", ["basic", "body", "bearer"])
def test_keys_where_segment_and_our_clients_put_them(ingest_client, settings, how):
    """Without anonymous ingestion, the write key works as Basic user name, as writeKey in the
    body, and as our Bearer header; none at all is 401/403."""
    settings.INGEST_ALLOW_ANONYMOUS = False
    key = services.ingestion_key_create(name="segment").raw_key
    payload: dict = {"batch": [{"type": "identify", "userId": f"u-{how}"}]}
    headers = {}
    if how == "basic":
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    elif how == "bearer":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    else:
        payload["writeKey"] = key
    response = ingest_client.post_json("/v1/batch", payload, **headers)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    anonymous = ingest_client.post_json("/v1/batch", {"batch": []})
    assert anonymous.status_code in (401, 403)
