"""The OpenAPI shapes of Segment's HTTP tracking API as served here (used by trackers.segment.api).

A batch documents what makes the request refused as a whole (not an object, `batch` missing or
not a list, too many messages); each message is free-form, since a bad message does not refuse
its batch: it is quarantined and reported in `results`. A single call documents the fields its
mapping reads, with the bounds our validation applies.
"""

from __future__ import annotations

from typing import Any

from events.schema import EVENT_NAME_MAX_CHARS, PRINTABLE_NAME
from trackers.segment.mapping import CALLS

_TEXT_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": "^[^\\x00]*\\S[^\\x00]*$",
}
ID = {"anyOf": [_TEXT_ID, {"type": "integer", "minimum": 0, "maximum": 10**15}]}
NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": EVENT_NAME_MAX_CHARS,
    "pattern": PRINTABLE_NAME,
}
ANY = {"description": "Any JSON value; a message that is not usable is quarantined."}

RESULT = {
    "type": "object",
    "properties": {
        "index": {"type": "integer"},
        "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
        "event_id": {"type": "string"},
        "id": {"type": "integer"},
        "call": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "warnings": {"type": "array", "items": {"type": "object"}},
        "rejected_id": {"type": "integer"},
    },
    "required": ["index", "status"],
}
ANSWER = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "rejected": {"type": "integer"},
        "results": {"type": "array", "items": RESULT},
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["success", "accepted", "duplicates", "rejected", "results"],
}


def batch_request(max_messages: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "batch": {
                "type": "array",
                "maxItems": max_messages,
                "items": ANY,
                "description": f"Messages of any call ({', '.join(sorted(CALLS))}) by `type`.",
            },
            "sentAt": {"description": "Client clock when sent (ISO-8601); corrects skew."},
            "writeKey": {"description": "The ingestion key, when not sent as Basic user name."},
        },
        "required": ["batch"],
    }


_TIME = {"type": "string", "format": "date-time"}
_COMMON = {
    "messageId": {"description": "The dedupe key (text or a number)."},
    "anonymousId": ID,
    "timestamp": _TIME,
    "originalTimestamp": _TIME,
    "sentAt": _TIME,
    "context": {"type": "object"},
    "writeKey": {"description": "The ingestion key, when not sent as Basic user name."},
}
_WHO = [{"required": ["userId"]}, {"required": ["anonymousId"]}]
_CALL_FIELDS: dict[str, tuple[dict[str, Any], list[str], bool]] = {
    "track": ({"userId": ID, "event": NAME, "properties": {"type": "object"}}, ["event"], True),
    "page": ({"userId": ID, "name": {}, "properties": {"type": "object"}}, [], True),
    "screen": ({"userId": ID, "name": {}, "properties": {"type": "object"}}, [], True),
    "identify": ({"userId": ID, "traits": {"type": "object"}}, [], True),
    "group": ({"userId": ID, "groupId": ID, "traits": {"type": "object"}}, ["groupId"], True),
    "alias": ({"userId": ID, "previousId": ID}, ["userId", "previousId"], False),
}


def call_request(call: str) -> dict[str, Any]:
    """One message of `call`: a user or an anonymous id (alias: both ids), the call's fields."""
    fields, required, either_id = _CALL_FIELDS[call]
    schema: dict[str, Any] = {"type": "object", "properties": {**_COMMON, **fields}}
    if required:
        schema["required"] = required
    if either_id:
        schema["anyOf"] = _WHO
    return schema
