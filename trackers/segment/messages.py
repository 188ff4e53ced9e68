"""One Segment message in: its call type (the path's, or the message's `type`), its size and
field types checked, then handed to the event mapping or the identity mapping. A message that
breaks a check is quarantined as sent, naming the field and rule."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import orjson

from trackers.common import Translated, untranslatable
from trackers.segment.identity import IdentityCall, identity_translate
from trackers.segment.mapping import CALLS, IDENTITY_CALLS, MESSAGE_MAX_BYTES, event_translate

# The fields a mapping reads, by the JSON type they must have when present: a message that
# breaks one is quarantined naming it (a wrong type is not silently dropped).
_OBJECT, _TIME, _ID = "object", "iso8601", "string"
_TYPED_FIELDS = {
    "properties": _OBJECT,
    "context": _OBJECT,
    "traits": _OBJECT,
    "timestamp": _TIME,
    "originalTimestamp": _TIME,
    "sentAt": _TIME,
    "userId": _ID,
    "anonymousId": _ID,
    "previousId": _ID,
    "groupId": _ID,
}
_TYPED_MESSAGES = {
    _OBJECT: "must be a JSON object",
    _TIME: "must be an ISO-8601 string",
    _ID: "must be a string",
}


_NONE = type(None)
_ALLOWED_TYPES = {
    _OBJECT: frozenset({dict, _NONE}),
    _TIME: frozenset({str, _NONE}),
    _ID: frozenset({str, int, _NONE}),
}
_TYPED_NAMES = tuple(_TYPED_FIELDS)


@functools.lru_cache(maxsize=256)
def _wrong_field(kinds: tuple[type, ...]) -> str | None:
    """The first typed field whose JSON type (`kinds`, by `_TYPED_NAMES`; NoneType when
    absent) is not allowed; memoised, since messages come in a few shapes."""
    for name, kind in zip(_TYPED_NAMES, kinds, strict=True):
        if kind not in _ALLOWED_TYPES[_TYPED_FIELDS[name]]:
            return name
    return None


def _shape_error(message: dict[str, Any]) -> Translated | None:
    get = message.get
    # The typed fields' types in `_TYPED_NAMES` order, written out: a third of the cost of
    # tuple(map(type, map(get, _TYPED_NAMES))), for every message.
    kinds = (
        type(get("properties")),
        type(get("context")),
        type(get("traits")),
        type(get("timestamp")),
        type(get("originalTimestamp")),
        type(get("sentAt")),
        type(get("userId")),
        type(get("anonymousId")),
        type(get("previousId")),
        type(get("groupId")),
    )
    name = _wrong_field(kinds)
    if name is None:
        return None
    rule = _TYPED_FIELDS[name]
    return untranslatable(message, name, rule, f"{name} {_TYPED_MESSAGES[rule]}")


def _too_large(message: Any) -> Translated:
    """Segment's limit of 32 KB per message, on the message as sent."""
    return untranslatable(
        message, "message", "max_size", f"must be at most {MESSAGE_MAX_BYTES} bytes of JSON"
    )


def message_translate(
    message: Any,
    *,
    call: str | None,
    key_id: int | None,
    batch_sent_at: Any = None,
    received_at: dt.datetime,
) -> Translated | IdentityCall:
    """One Segment message; `call` is the path's (/v1/track) or None for a batch item, whose
    own `type` names it. The JSON written to measure it is the original the event keeps."""
    if not isinstance(message, dict):
        return untranslatable(message, "message", "object", "each message must be a JSON object")
    try:
        written: bytes | None = orjson.dumps(message)
    except (TypeError, orjson.JSONEncodeError):
        written = None  # the schema layer names what cannot be encoded
    if written is not None and len(written) > MESSAGE_MAX_BYTES:
        return _too_large(message)
    call = call or message.get("type")
    if not isinstance(call, str) or call not in CALLS:
        allowed = ", ".join(sorted(CALLS))
        return untranslatable(message, "type", "allowed_values", f"must be one of {allowed}")
    wrong_type = _shape_error(message)
    if wrong_type is not None:
        return wrong_type
    if call in IDENTITY_CALLS:
        return identity_translate(
            message, call=call, batch_sent_at=batch_sent_at, received_at=received_at
        )
    return event_translate(
        message,
        call=call,
        key_id=key_id,
        batch_sent_at=batch_sent_at,
        received_at=received_at,
        original_json=written,
    )
