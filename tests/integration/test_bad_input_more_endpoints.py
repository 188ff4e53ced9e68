"""The bad-input battery on the endpoints the other battery files leave out: our `/identify` and
`/alias` (also as tracker.js calls them, with a public key), PostHog's capture v1 and flag
calls, Snowplow's pixel. Malformed, empty, oversize, gzip bombs and broken streams, other
encodings, wrong types: a 4xx with a JSON body naming field and rule (a request refused as a
whole kept as one rejected row), or the protocol's own answer (no flags; the pixel's GIF),
never a 5xx, and nothing stored from what was refused. Through the site's WSGI application on
both request paths."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib

import pytest

from events import cors, services
from events.models import Event, Person, PersonLink, RejectedEvent
from tests.helpers import assert_kept, assert_refused

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres", "dev_mode")]

IDENTITY = ["/identify", "/alias", "/api/v1/identify", "/api/v1/alias"]
V1 = "/i/v1/analytics/events"
FLAGS = ["/flags/?v=4", "/flags/?v=2&config=true", "/decide/?v=3"]
GZIP = {"HTTP_CONTENT_ENCODING": "gzip"}
MALFORMED = [b'{"user_id": ', b"not json", b"\xff\xfe{", b'{"a": NaN}', b"[" * 5000 + b"]" * 5000]
MALFORMED_IDS = ["truncated", "text", "not-utf8", "nan", "nested"]


def _gzip_bomb(inflated_bytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(inflated_bytes >> 20)]
    return b"".join(parts) + compressor.flush()


def _nothing_stored() -> None:
    assert not Event.objects.exists()
    assert not Person.objects.exists() and not PersonLink.objects.exists()


@pytest.mark.parametrize("path", [*IDENTITY, V1])
@pytest.mark.parametrize("body", MALFORMED, ids=MALFORMED_IDS)
def test_malformed_bodies_are_400_and_kept(ingest_client, path, body):
    response = ingest_client.post_raw(path, body)
    assert_kept(assert_refused(response, 400, "body", "json"), "body", "json")
    _nothing_stored()


@pytest.mark.parametrize("path", [*IDENTITY, V1])
def test_empty_bodies_are_400(ingest_client, path):
    assert_refused(ingest_client.post_raw(path, b""), 400, "body", "json")
    _nothing_stored()


@pytest.mark.parametrize("path", [*IDENTITY, V1])
def test_gzip_bombs_stop_at_the_limit_with_413(ingest_client, path):
    response = ingest_client.post_raw(path, _gzip_bomb(16 << 20), **GZIP)
    refused = assert_refused(response, 413, "body", "max_size")
    assert len(assert_kept(refused, "body", "max_size").raw_payload.encode()) <= 65_536 * 4
    _nothing_stored()


@pytest.mark.parametrize("path", [*IDENTITY, V1])
@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        (b"\x1f\x8b\x08\x00garbage", "Content-Encoding", "gzip"),
        (gzip.compress(b'{"user_id": "u"}')[:-6], "Content-Encoding", "gzip"),
    ],
    ids=["not-gzip", "truncated"],
)
def test_broken_gzip_streams_are_400_naming_content_encoding(
    ingest_client, path, body, field, rule
):
    assert_refused(ingest_client.post_raw(path, body, **GZIP), 400, field, rule)
    _nothing_stored()


@pytest.mark.parametrize("path", IDENTITY)
def test_other_encodings_and_types_are_415(ingest_client, path):
    br = ingest_client.post_raw(path, b"{}", HTTP_CONTENT_ENCODING="br")
    assert br.status_code == 415 and br.json()["errors"]
    plain = ingest_client.post_raw(path, b'{"user_id": "u"}', "text/plain")
    assert_refused(plain, 415, "Content-Type", "application/json")
    _nothing_stored()


@pytest.mark.parametrize("path", [*IDENTITY, V1])
def test_bodies_over_the_limit_are_413(ingest_client, path):
    body = json.dumps({"batch": [], "user_id": "u", "pad": "x" * 1_100_000}).encode()
    assert_kept(
        assert_refused(ingest_client.post_raw(path, body), 413, "body", "max_size"),
        "body",
        "max_size",
    )
    _nothing_stored()


@pytest.mark.parametrize("path", IDENTITY)
@pytest.mark.parametrize("payload", [[], "x", 42, None, [{"user_id": "u"}]])
def test_identity_bodies_that_are_not_objects_are_400(ingest_client, path, payload):
    assert_refused(ingest_client.post_json(path, payload), 400, "body", "object")
    _nothing_stored()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/identify", {"user_id": 7}, "user_id"),
        ("/identify", {"user_id": ["u"]}, "user_id"),
        ("/identify", {"user_id": True}, "user_id"),
        ("/identify", {"anonymous_id": 1.5}, "anonymous_id"),
        ("/identify", {"user_id": "u", "traits": "gold"}, "traits"),
        ("/identify", {"user_id": "u", "traits": {f"k{i}": i for i in range(101)}}, "traits"),
        ("/identify", {"user_id": "u", "timestamp": 1767607200}, "timestamp"),
        ("/identify", {"user_id": "u", "timestamp": "\ud800"}, "timestamp"),
        ("/alias", {"previous_id": 1, "user_id": "u"}, "previous_id"),
        ("/alias", {"previous_id": "a", "user_id": None}, "user_id"),
        ("/alias", {"previous_id": "a" * 200, "user_id": "u"}, "previous_id"),
    ],
)
def test_identity_fields_of_the_wrong_type_are_400_naming_the_field(
    ingest_client, path, body, field
):
    response = ingest_client.post_raw(path, json.dumps(body).encode())
    assert response.status_code == 400, response.content
    assert field in {error["field"] for error in response.json()["errors"]}
    _nothing_stored()


def test_a_public_key_call_with_bad_input_is_refused_readably(ingest_client):
    """tracker.js's identify with a public key: bad input is the same 400, with CORS headers
    so the page can read it (and not retry)."""
    shop = "https://shop.example.com"
    key = services.ingestion_key_create(name="site", kind="public", allowed_origins=[shop])
    cors.public_origins_forget()
    for body in (b"not json", b'{"user_id": 7}', json.dumps([1]).encode()):
        response = ingest_client.post_raw(f"/identify?key={key.raw_key}", body, HTTP_ORIGIN=shop)
        assert response.status_code == 400, response.content
        assert response["Access-Control-Allow-Origin"] == shop
        assert response.json()["errors"]
    cors.public_origins_forget()
    _nothing_stored()


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ([{"event": "x"}], "body", "object"),
        ("batch", "body", "object"),
        ({}, "batch", "required"),
        ({"batch": {"event": "x"}}, "batch", "list"),
        ({"batch": None}, "batch", "required"),
        ({"batch": [], "created_at": 1767607200}, "created_at", "string"),
    ],
)
def test_capture_v1_envelopes_of_the_wrong_shape_are_400_and_kept(
    ingest_client, payload, field, rule
):
    response = ingest_client.post_json(V1, payload)
    assert_kept(assert_refused(response, 400, field, rule), field, rule)


def test_capture_v1_bad_events_are_dropped_by_uuid_and_the_rest_stored(ingest_client, settings):
    good = str(uuid.uuid4())
    events = [
        "not an object",
        {"event": 12, "uuid": "u-12", "distinct_id": "u"},
        {"event": "x", "uuid": "u-ts", "distinct_id": "u", "timestamp": "yesterday"},
        {"event": "x", "uuid": "u-opt", "distinct_id": "u", "options": "not an object"},
        {"event": "x", "uuid": "u-nobody"},
        {"event": "signup", "uuid": good, "distinct_id": "u", "properties": {"plan": "pro"}},
    ]
    response = ingest_client.post_json(V1, {"batch": events})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results[good] == {"result": "ok"}
    dropped = {key for key, result in results.items() if result["result"] == "drop"}
    assert dropped == {"0", "u-12", "u-ts", "u-nobody"}  # keyed by position without a uuid
    assert results["u-opt"] == {"result": "ok"}  # options not an object: ignored, not fatal
    assert Event.objects.count() == 2
    assert RejectedEvent.objects.count() == 4
    settings.INGEST_MAX_BATCH_EVENTS = 3
    assert_refused(ingest_client.post_json(V1, {"batch": events}), 413, "batch", "max_items")


@pytest.mark.parametrize("path", FLAGS)
@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"not json", {}),
        (b"", {}),
        (b"[" * 5000, {}),
        (_gzip_bomb(16 << 20), GZIP),
        (b"\x1f\x8b garbage", GZIP),
        (json.dumps({"pad": "x" * 1_100_000}).encode(), {}),
    ],
    ids=["text", "empty", "nested", "gzip-bomb", "bad-gzip", "oversize"],
)
def test_flag_calls_answer_no_flags_to_any_body_and_store_nothing(
    ingest_client, path, body, headers
):
    """The flags answer depends on nothing sent, so the body is never read: no bomb inflates."""
    response = ingest_client.post_raw(path, body, **headers)
    assert response.status_code == 200
    assert response.json()["flags"] == {} and response.json()["featureFlags"] == {}
    assert not RejectedEvent.objects.exists()
    _nothing_stored()


@pytest.mark.parametrize(
    "query",
    [
        "e=pv&aid=" + "x" * 3000,
        "e=pv&uid=%ff%fe",
        "e=ue&ue_pr=not-json",
        "e=ue&ue_pr=%7B%22schema%22%3A1%7D",
        "e=pv&cx=@@@",
        "e=pv&e=se&e=tr",
        "e=tr&tr_tt=lots",
        "e=pv&dtm=" + "9" * 40,
        "e=pv&url=" + "u" * 9000,
    ],
)
def test_the_pixel_never_fails_on_a_bad_query(ingest_client, query):
    """Anything the pixel can read is stored or quarantined (its GIF); an unknown key in `aid`
    is a 401 naming the key."""
    response = ingest_client.get("/i?" + query)
    if query.startswith("e=pv&aid="):
        assert_refused(response, 401, "Authorization", "valid_key")
        assert not RejectedEvent.objects.exists()
        return
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "image/gif"
    assert Event.objects.count() + RejectedEvent.objects.count() == 1
