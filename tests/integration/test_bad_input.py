"""Every kind of bad body and field through the site's WSGI application on both request paths
(fast path on and off: `ingest_client`), on PostgreSQL: the documented status, a JSON body
naming field and rule, never a 500, and every refused event kept in RejectedEvent with its
reasons and a bounded raw payload. Times, per-type rules, read limits and bounds:
test_bad_input_values.py."""

from __future__ import annotations

import json
import uuid

import pytest

from events.models import Event, RejectedEvent
from tests.factories import event_payload
from tests.helpers import assert_kept, assert_refused, error_pairs, nested, raw_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres", "dev_mode")]

SINGLE, BATCH = "/events", "/events/batch"


# ----------------------------------------------------------------------------- whole bodies
MALFORMED_BODIES = [
    pytest.param(b'{"event_id": ', id="truncated"),
    pytest.param(b"not json at all", id="text"),
    pytest.param(b"\xff\xfe\x00{", id="not-utf8"),
    pytest.param(b'{"price": NaN}', id="nan-literal"),
    pytest.param(b'{"price": Infinity}', id="infinity-literal"),
    pytest.param(b'{"price": -Infinity}', id="minus-infinity-literal"),
    pytest.param(b"[" * 5000 + b"]" * 5000, id="nested-5000"),
    pytest.param(b"   ", id="whitespace"),
]


@pytest.mark.parametrize("path", [SINGLE, BATCH])
@pytest.mark.parametrize("body", MALFORMED_BODIES)
def test_malformed_json_is_400_and_kept(ingest_client, path, body):
    """A body that is not JSON is refused as a whole (400, body/json) and kept, bounded."""
    response = ingest_client.post_raw(path, body)
    refused = assert_refused(response, 400, "body", "json")
    rejected = assert_kept(refused, "body", "json")
    assert len(rejected.raw_payload) <= 65_536
    assert Event.objects.count() == 0


@pytest.mark.parametrize("path", [SINGLE, BATCH])
def test_empty_body_is_400_and_kept(ingest_client, path):
    """No body at all (DRF would hand the view {}) is refused like malformed JSON."""
    response = ingest_client.post_raw(path, b"")
    assert_kept(assert_refused(response, 400, "body", "json"), "body", "json")


@pytest.mark.parametrize("path", [SINGLE, BATCH])
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""]
)
def test_wrong_content_type_is_415_and_kept(ingest_client, path, content_type):
    """Only application/json is parsed; anything else is 415 naming Content-Type."""
    body = json.dumps(event_payload()).encode()
    response = ingest_client.post_raw(path, body, content_type)
    refused = assert_refused(response, 415, "Content-Type", "application/json")
    rejected = assert_kept(refused, "Content-Type", "application/json")
    assert rejected.payload["event_type"] == "page_view"  # the body is what we keep


def test_single_event_over_32_kb_is_413(ingest_client):
    """A single-event body over INGEST_MAX_EVENT_BYTES is 413 before it is parsed."""
    response = ingest_client.post_json(SINGLE, event_payload(page_url="/" + "x" * 40_000))
    refused = assert_refused(response, 413, "body", "max_size")
    rejected = assert_kept(refused, "body", "max_size")
    assert len(rejected.raw_payload.encode()) <= 65_536


def test_batch_over_1_mb_is_413_and_kept_truncated(ingest_client):
    """A batch body over INGEST_MAX_BODY_BYTES is 413; its kept prefix is cut and marked so."""
    events = [event_payload(page_url="/" + "p" * 1500) for _ in range(800)]
    body = json.dumps({"events": events}).encode()
    assert len(body) > 1_048_576
    response = ingest_client.post_raw(BATCH, body)
    rejected = assert_kept(assert_refused(response, 413, "body", "max_size"), "body", "max_size")
    assert rejected.raw_truncated is True
    assert len(rejected.raw_payload.encode()) <= 65_536
    assert Event.objects.count() == 0


def test_batch_over_1000_events_is_413_naming_events_max_items(ingest_client):
    """More than INGEST_MAX_BATCH_EVENTS events is 413 with field `events`, rule `max_items`."""
    response = ingest_client.post_json(BATCH, {"events": [{}] * 1001})
    refused = assert_refused(response, 413, "events", "max_items")
    assert_kept(refused, "events", "max_items")
    assert Event.objects.count() == 0


def test_batch_of_exactly_1000_events_is_accepted(ingest_client):
    """The limit is inclusive: 1,000 events go in."""
    response = ingest_client.post_json(BATCH, {"events": [event_payload() for _ in range(1000)]})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000
    assert Event.objects.count() == 1000


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        pytest.param({"events": "x"}, "events", "list", id="events-string"),
        pytest.param({"events": {"0": {}}}, "events", "list", id="events-object"),
        pytest.param({}, "events", "required", id="no-events"),
        pytest.param([event_payload()], "body", "object", id="bare-list"),
        pytest.param("events", "body", "object", id="bare-string"),
    ],
)
def test_batch_body_of_the_wrong_shape_is_400(ingest_client, payload, field, rule):
    """The batch body must be {"events": [...]}; anything else is 400 naming what is wrong."""
    response = ingest_client.post_json(BATCH, payload)
    assert_kept(assert_refused(response, 400, field, rule), field, rule)


@pytest.mark.parametrize("payload", [[], "x", 42, None, [event_payload()]])
def test_single_event_that_is_not_an_object_is_400(ingest_client, payload):
    """POST /events with a list, string, number or null is one rejected event."""
    response = ingest_client.post_raw(SINGLE, json.dumps(payload).encode())
    assert_kept(assert_refused(response, 400, "event", "object"), "event", "object")


# ----------------------------------------------------------------------------- fields
def test_invalid_fields_are_each_named_with_their_rule(ingest_client):
    """One response lists every bad field with the rule it broke."""
    payload = event_payload(
        event_id="not-a-uuid",
        device_type="toaster",
        timestamp="yesterday",
        user_id="u" * 129,
        country="ZZ",
        currency="ZZZ",
        price=-1,
        page_url=12,
    )
    body = assert_refused(ingest_client.post_json(SINGLE, payload), 400, "event_id", "uuid")
    assert error_pairs(body) >= {
        ("event_id", "uuid"),
        ("device_type", "allowed_values"),
        ("timestamp", "iso8601"),
        ("user_id", "max_length"),
        ("country", "format"),
        ("currency", "format"),
        ("price", "range"),
        ("page_url", "string"),
    }
    assert body["status"] == "rejected"
    rejected = assert_kept(body, "country", "format")
    assert rejected.event_id == "not-a-uuid"


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        pytest.param({"event_type": "wish\x07list"}, "event_type", "printable", id="type"),
        pytest.param({"event_type": "e" * 129}, "event_type", "max_length", id="long-type"),
        pytest.param({"event_type": ""}, "event_type", "min_length", id="empty-type"),
        pytest.param({"colour": "red"}, "colour", "unknown_field", id="unknown-field"),
        pytest.param({"user_id": None}, "user_id", "required", id="null-identity"),
        pytest.param({"user_id": 7}, "user_id", "string", id="number-id"),
        pytest.param({"anonymous_id": ["a"]}, "anonymous_id", "string", id="list-anonymous-id"),
        pytest.param({"anonymous_id": "a" * 129}, "anonymous_id", "max_length", id="long-anon"),
        pytest.param({"session_id": 5}, "session_id", "string", id="number-session"),
        pytest.param({"device_type": "tv"}, "device_type", "allowed_values", id="device"),
        pytest.param({"user_id": "u" * 129}, "user_id", "max_length", id="long-id"),
        pytest.param({"page_url": "/" + "x" * 20_000}, "page_url", "max_length", id="20kb-url"),
        pytest.param({"country": "us"}, "country", "format", id="lowercase-country"),
        pytest.param({"quantity": 1.5}, "quantity", "integer", id="fractional-quantity"),
        pytest.param({"quantity": "2"}, "quantity", "integer", id="string-quantity"),
        pytest.param({"price": 1.999}, "price", "decimal_places", id="price-3-places"),
        pytest.param({"price": "abc"}, "price", "number", id="price-text"),
        pytest.param({"properties": [1, 2]}, "properties", "object", id="properties-list"),
    ],
)
def test_each_invalid_field_is_400_naming_it(ingest_client, overrides, field, rule):
    """Unknown event types, unknown fields, wrong types and lengths name field and rule."""
    body = assert_refused(
        ingest_client.post_json(SINGLE, event_payload(**overrides)), 400, field, rule
    )
    assert_kept(body, field, rule)


def test_unknown_field_names_are_escaped_and_cut_in_errors(ingest_client):
    """A 10 KB unknown key with NUL inside is named, but bounded and storable."""
    key = "k\u0000" + "y" * 10_000
    body = json.loads(ingest_client.post_json(SINGLE, event_payload(**{key: 1})).content)
    fields = [error["field"] for error in body["errors"] if error["rule"] == "unknown_field"]
    assert len(fields) == 1
    assert fields[0].startswith("k\\x00yyy") and len(fields[0]) <= 70
    assert RejectedEvent.objects.get(pk=body["rejected_id"]).reasons[0]["rule"] == "unknown_field"


def test_many_unknown_fields_are_listed_up_to_a_bound(ingest_client):
    """Hundreds of unknown keys do not make a response (and a stored reason list) unbounded."""
    payload = event_payload(**{f"extra_{n}": n for n in range(500)})
    body = assert_refused(ingest_client.post_json(SINGLE, payload), 400, "event", "max_errors")
    assert len(body["errors"]) <= 21


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        pytest.param({"user_id": '"a\\u0000b"'}, "user_id", "no_nul_bytes", id="top-level"),
        pytest.param({"search_query": '"\\u0000"'}, "search_query", "no_nul_bytes", id="query"),
        pytest.param({"event_id": '"12\\u0000"'}, "event_id", "uuid", id="event-id"),
        pytest.param(
            {"properties": '{"note": "a\\u0000b"}'}, "properties", "no_nul_bytes", id="props"
        ),
        pytest.param(
            {"properties": '{"a\\u0000": 1}'}, "properties", "no_nul_bytes", id="props-key"
        ),
        pytest.param(
            {"properties": '{"deep": {"er": ["x\\u0000"]}}'},
            "properties",
            "no_nul_bytes",
            id="props-nested",
        ),
    ],
)
def test_nul_bytes_are_400_and_kept(ingest_client, fields, field, rule):
    """NUL cannot be stored by PostgreSQL: the event is refused and its raw payload kept."""
    body = assert_refused(ingest_client.post_raw(SINGLE, raw_event(**fields)), 400, field, rule)
    rejected = assert_kept(body, field, rule)
    assert "\\u0000" in rejected.raw_payload
    assert "\x00" not in rejected.event_id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"user_id": '"\\ud800"'}, "user_id", id="lone-high"),
        pytest.param({"session_id": '"ab\\udfffcd"'}, "session_id", id="lone-low"),
        pytest.param({"event_id": '"\\ud800"'}, "event_id", id="event-id"),
        pytest.param({"properties": '{"a": "\\ud83d"}'}, "properties.a", id="props-value"),
        pytest.param({"properties": '{"\\udc00": 1}'}, "properties.\\udc00", id="props-key"),
    ],
)
def test_unpaired_surrogates_are_400_and_kept(ingest_client, fields, field):
    """`\\ud800` escapes (valid JSON, invalid Unicode) refuse the event, never a 500, and the
    response and the kept payload are valid UTF-8."""
    response = ingest_client.post_raw(SINGLE, raw_event(**fields))
    body = assert_refused(response, 400, field, "valid_unicode")
    response.content.decode("utf-8")  # strict: no surrogate reached the response
    rejected = assert_kept(body, field, "valid_unicode")
    assert "\\u" in rejected.raw_payload or "\\ud" in rejected.raw_payload


def test_paired_surrogate_escapes_are_an_ordinary_character(ingest_client):
    """`\\ud83d\\ude00` is one emoji, and that is fine."""
    response = ingest_client.post_raw(SINGLE, raw_event(search_query='"\\ud83d\\ude00"'))
    assert response.status_code == 201, response.content
    assert Event.objects.get().search_query == "\U0001f600"


def test_surrogates_in_a_batch_reject_only_their_event(ingest_client):
    """A lone surrogate makes the body fall back to the standard parser; the others go in."""
    good = json.dumps(event_payload()).encode()
    bad = raw_event(user_id='"\\ud800"')
    response = ingest_client.post_raw(BATCH, b'{"events": [' + good + b", " + bad + b"]}")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert ("user_id", "valid_unicode") in error_pairs(results[1])
    assert Event.objects.count() == 1
    assert RejectedEvent.objects.get(pk=results[1]["rejected_id"]).reasons


def test_100_kb_strings(ingest_client):
    """A 100 KB string: 413 for a single event, one rejected event (max_size) in a batch."""
    huge = "x" * 100_000
    single = ingest_client.post_json(SINGLE, event_payload(user_id=huge))
    assert_refused(single, 413, "body", "max_size")
    batch = ingest_client.post_json(
        BATCH, {"events": [event_payload(search_query=huge), event_payload()]}
    )
    assert batch.status_code == 200
    first, second = batch.json()["results"]
    assert ("event", "max_size") in error_pairs(first)
    assert second["status"] == "accepted"
    rejected = RejectedEvent.objects.get(pk=first["rejected_id"])
    assert len(rejected.raw_payload.encode()) <= 65_536


@pytest.mark.parametrize("depth", [6, 50, 300, 900])
def test_deeply_nested_properties_are_400_max_depth(ingest_client, depth):
    """Nesting past 5 levels is refused by rule, however deep (no RecursionError, no 500)."""
    body_text = raw_event(properties=json.dumps(nested(depth)))
    response = ingest_client.post_raw(BATCH, b'{"events": [' + body_text + b"]}")
    assert response.status_code == 200, response.content[:300]
    result = response.json()["results"][0]
    assert result["status"] == "rejected"
    assert {rule for field, rule in error_pairs(result)} == {"max_depth"}
    assert RejectedEvent.objects.get(pk=result["rejected_id"]).raw_payload


def test_properties_at_the_depth_limit_are_accepted(ingest_client):
    response = ingest_client.post_json(SINGLE, event_payload(properties=nested(5)))
    assert response.status_code == 201, response.content
    assert Event.objects.get().properties == nested(5)


@pytest.mark.parametrize(
    ("fields", "field", "rules"),
    [
        pytest.param({"price": "1e400"}, "price", {"finite_number"}, id="price-1e400"),
        pytest.param({"revenue": "-1e400"}, "revenue", {"finite_number"}, id="revenue--1e400"),
        pytest.param({"quantity": "1e400"}, "quantity", {"integer"}, id="quantity-1e400"),
        pytest.param({"quantity": str(10**30)}, "quantity", {"integer", "range"}, id="qty-10e30"),
        pytest.param({"price": str(10**30)}, "price", {"range"}, id="price-10e30"),
        pytest.param({"price": "1" + "0" * 5000}, "body", {"json"}, id="price-5000-digits"),
        pytest.param({"properties": '{"x": 1e400}'}, "properties", {"finite_number"}, id="props"),
        pytest.param(
            {"properties": '{"x": ' + str(10**30) + "}"}, "properties", {"range"}, id="props-int"
        ),
    ],
)
def test_huge_numbers_are_refused_by_rule(ingest_client, fields, field, rules):
    """Numbers beyond what a column holds are 400 naming the field, never 500."""
    response = ingest_client.post_raw(SINGLE, raw_event(**fields))
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert {rule for name, rule in error_pairs(body) if name.startswith(field)} & rules, body
    assert RejectedEvent.objects.filter(pk=body["rejected_id"]).exists()


def test_non_object_events_in_a_batch_are_rejected_one_by_one(ingest_client):
    """Numbers, strings, nulls and lists in `events` are rejected at their index; the good
    event is stored and every bad one kept with its raw text."""
    good = event_payload()
    response = ingest_client.post_json(BATCH, {"events": [1, "x", None, [], good, True]})
    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["rejected"] * 4 + ["accepted", "rejected"]
    assert [r["index"] for r in body["results"]] == list(range(6))
    for result in body["results"][:4]:
        assert ("event", "object") in error_pairs(result)
    raws = [
        RejectedEvent.objects.get(pk=result["rejected_id"]).raw_payload
        for result in body["results"]
        if result["status"] == "rejected"
    ]
    assert raws == ["1", '"x"', "null", "[]", "true"]
    assert Event.objects.get().event_id == uuid.UUID(good["event_id"])
