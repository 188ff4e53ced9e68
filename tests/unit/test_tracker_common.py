"""trackers.common: the pieces every protocol shares (ids, keys, times), without a database."""

import base64
import hashlib
import uuid

import pytest
from django.test import RequestFactory

from trackers.common import basic_user_name, iso_from_epoch_millis
from trackers.event_ids import event_id_for


def test_event_id_is_stable_for_a_resent_message():
    """A re-send maps to the same event_id, so the ingestion service reports a duplicate."""
    first = event_id_for(source="segment", key_id=1, message_id="abc", message={"a": 1})
    again = event_id_for(source="segment", key_id=1, message_id="abc", message={"b": 2})
    assert first == again
    assert uuid.UUID(first).version == 5


@pytest.mark.parametrize(
    "other",
    [
        {"source": "posthog", "key_id": 1},
        {"source": "segment", "key_id": 2},
        {"source": "segment", "key_id": None},
    ],
)
def test_event_ids_of_other_sources_or_keys_never_collide(other):
    """Equal message ids from two sources (or two keys) are two events."""
    ours = event_id_for(source="segment", key_id=1, message_id="m-1", message={})
    theirs = event_id_for(message_id="m-1", message={}, **other)
    assert ours != theirs


def test_a_uuid_message_id_is_not_taken_as_is():
    """Even a UUID message id goes through the namespace: another source may send the same."""
    message_id = str(uuid.uuid4())
    assert event_id_for(source="segment", key_id=1, message_id=message_id, message={}) != (
        message_id
    )


@pytest.mark.parametrize("message_id", [None, "", True, {"x": 1}, "x" * 300])
def test_a_message_without_usable_id_is_named_by_its_content(message_id):
    """No usable id: the same content gives the same id, other content another id."""
    message = {"event": "Signed Up", "n": 1}
    one = event_id_for(source="segment", key_id=1, message_id=message_id, message=message)
    same = event_id_for(source="segment", key_id=1, message_id=message_id, message=dict(message))
    other = event_id_for(source="segment", key_id=1, message_id=message_id, message={"n": 2})
    assert one == same != other


def test_numeric_message_ids_are_text():
    a = event_id_for(source="snowplow", key_id=1, message_id=42, message={})
    assert a == event_id_for(source="snowplow", key_id=1, message_id="42", message={})


def _basic(value: str) -> str:
    return "Basic " + base64.b64encode(value.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_basic("ek_key:"), "ek_key"),
        (_basic("ek_key:ignored"), "ek_key"),
        (_basic(":only-password"), None),
        ("Basic not-base64!", None),
        ("Bearer ek_key", None),
        ("", None),
    ],
)
def test_basic_user_name(header, expected):
    """Segment's SDKs send the write key as the Basic user name with an empty password."""
    request = RequestFactory().post("/v1/batch", HTTP_AUTHORIZATION=header)
    assert basic_user_name(request) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_700_000_000_123, "2023-11-14T22:13:20.123000Z"),
        ("1700000000123", "2023-11-14T22:13:20.123000Z"),
        ("abc", None),
        (None, None),
        (True, None),
        (10**20, None),
    ],
)
def test_iso_from_epoch_millis(value, expected):
    assert iso_from_epoch_millis(value) == expected


@pytest.mark.parametrize("message_id", ["abc", "ü-ñ", "x" * 256, 12345])
def test_event_id_is_the_standard_uuid5(message_id):
    """The fast uuid5 equals the standard library's, so ids never change with the code."""
    namespace = uuid.uuid5(uuid.UUID("7d0c5a1e-6a52-4c1b-9a0e-3f2f3c6b8e11"), "segment:3")
    expected = uuid.uuid5(namespace, f"id:{message_id}")
    assert event_id_for(source="segment", key_id=3, message_id=message_id, message={}) == str(
        expected
    )


def test_a_message_id_with_a_lone_surrogate_keeps_its_id():
    """Such an id is hashed with its surrogate as UTF-8 bytes (surrogatepass), as it was when
    first stored: a re-send must find the same event_id."""
    namespace = uuid.uuid5(uuid.UUID("7d0c5a1e-6a52-4c1b-9a0e-3f2f3c6b8e11"), "segment:3")
    name = "id:a\ud800b".encode("utf-8", "surrogatepass")
    digest = hashlib.sha1(namespace.bytes + name, usedforsecurity=False).digest()
    expected = uuid.UUID(bytes=digest[:16], version=5)
    assert event_id_for(source="segment", key_id=3, message_id="a\ud800b", message={}) == str(
        expected
    )
