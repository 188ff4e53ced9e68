"""The OpenAPI shapes of Segment's HTTP tracking API as served here (used by trackers.segment.api).

A batch documents what makes the request refused as a whole (not an object, `batch` missing or
not a list, too many messages); each message is free-form, since a bad message does not refuse
its batch: it is quarantined and reported in `results`. A single call describes the fields its
mapping reads (in words: a message refused by its mapping or by validation is quarantined and
answered 400 with its reasons, as a batch's message is).
"""

from __future__ import annotations

from typing import Any

from trackers.segment.mapping import CALLS

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


_TIME = "an ISO-8601 date-time (years 2 to 9998)"
_IDENTIFIER = "text (at most 128 characters, no NUL) or an integer"
_COMMON = {
    "messageId": "the dedupe key (text or a number)",
    "anonymousId": _IDENTIFIER,
    "userId": _IDENTIFIER,
    "timestamp": _TIME,
    "originalTimestamp": _TIME + "; wins over timestamp",
    "sentAt": _TIME + "; corrects clock skew",
    "context": "an object: page.url, page.referrer, userAgent, ip, locale, device.type, "
    "campaign, location.country, sessionId",
    "writeKey": "the ingestion key, when not sent as Basic user name",
}
_CALL_FIELDS: dict[str, tuple[dict[str, str], list[str]]] = {
    "track": (
        {"event": "the event's name (printable, at most 128 characters)", "properties": "object"},
        ["event"],
    ),
    "page": ({"name": "the page's name", "properties": "an object: url, referrer, ..."}, []),
    "screen": ({"name": "the screen's name", "properties": "an object"}, []),
    "identify": ({"traits": "an object (at most 8 KB)"}, []),
    "group": ({"groupId": _IDENTIFIER, "traits": "an object"}, ["groupId"]),
    "alias": ({"previousId": _IDENTIFIER}, ["userId", "previousId"]),
}


def call_request(call: str) -> dict[str, Any]:
    """One message of `call`. Its fields are described, not typed: a message refused by its
    mapping or by validation is quarantined and answered 400 with its reasons, exactly as a
    batch's message is (the conformance test checks that such a 400 kept the message)."""
    fields, required = _CALL_FIELDS[call]
    described = {name: {"description": text} for name, text in {**_COMMON, **fields}.items()}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": described,
        "description": "A Segment message; needs userId or anonymousId (alias: both ids).",
    }
    if required:
        schema["required"] = required
    return schema
