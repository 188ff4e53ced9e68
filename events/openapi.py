"""The OpenAPI document of the event API, made to say what the API does (issue 14, item 9).

drf-spectacular builds the paths from the views; `api_document_complete` (a postprocessing
hook in SPECTACULAR_SETTINGS) then gives the ingestion and read operations their real request
and answer shapes, built from the constants the validator itself uses (events.schema), so the
two cannot drift: country an ISO code (so "" is invalid, as the validator says), price,
revenue, quantity and sent_at nullable (as it accepts), per-type required fields, the bounds
of `limit`, every error answer with its JSON shape, and the per-item results of a batch.
tests/integration/test_openapi_conformance.py runs schemathesis against a live server to
keep it so.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse

from events.openapi_shapes import (
    BATCH_RESULT,
    ERROR,
    FIELD_ERROR,
    HEALTH,
    INGEST_RESULT,
    ITEM_RESULT,
    PAGE,
    RECENT,
    STATS,
)
from events.schema import (
    COUNTRY_CODES,
    CURRENCY_CODES,
    DEVICE_TYPES,
    EVENT_NAME_MAX_CHARS,
    EVENT_TYPES,
    MAX_MONEY,
    MAX_QUANTITY,
    POSITIVE_QUANTITY_TYPES,
    PRINTABLE_NAME,
    PROPERTIES_MAX_KEYS,
    REQUIRED_BY_TYPE,
    TIMESTAMP_YEAR_PATTERN,
)

REF = "#/components/schemas/"
NO_NUL = "^[^\\x00]*$"
# session_id, device_type and country are derived when absent; user_id or anonymous_id.
COMMON_REQUIRED = ["event_id", "event_type", "timestamp"]
IDENTITY = [
    {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}}
    for name in ("user_id", "anonymous_id")
]
CUSTOM_EVENT_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": EVENT_NAME_MAX_CHARS,
    "pattern": PRINTABLE_NAME,
    "not": {"enum": list(EVENT_TYPES)},
    "description": "Any printable name other than the seven e-commerce types: a custom event.",
}


def _text(max_length: int, min_length: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "pattern": NO_NUL}
    if min_length:
        schema["minLength"] = min_length
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


MONEY = {
    "description": f"0 to {MAX_MONEY}, at most 2 decimal places; a JSON number or a decimal "
    'string such as "19.99".',
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": float(MAX_MONEY), "multipleOf": 0.01},
        {"type": "string", "pattern": "^[0-9]{1,10}(\\.[0-9]{1,2})?$"},
    ],
}
DATETIME = {
    "type": "string",
    "format": "date-time",
    "pattern": TIMESTAMP_YEAR_PATTERN,
    "description": "ISO-8601, in the years 0002 to 9998; an offset is converted to UTC, none "
    "means UTC.",
}


def _event_properties() -> dict[str, Any]:
    return {
        "event_id": {"type": "string", "format": "uuid"},
        "event_type": {"type": "string", "enum": list(EVENT_TYPES)},
        "timestamp": {
            **DATETIME,
            "description": "Event time (ISO-8601, years 0002 to 9998); at most "
            "INGEST_MAX_FUTURE_SKEW_SECONDS (default 300) in the future, and within the years "
            "Python holds (rule date_range), after the sent_at correction.",
        },
        "sent_at": _nullable(
            {**DATETIME, "description": "Client clock when sent; corrects clock skew."}
        ),
        "user_id": _nullable(_text(128)),
        "anonymous_id": _nullable(_text(128)),
        "session_id": _nullable(
            {**_text(128), "description": "Derived when absent: 30 minutes of inactivity."}
        ),
        "device_type": {
            "type": "string",
            "enum": list(DEVICE_TYPES),
            "nullable": True,
            "description": "Derived from the User-Agent when absent.",
        },
        "country": {
            "type": "string",
            "enum": sorted(COUNTRY_CODES),
            "nullable": True,
            "description": 'ISO 3166-1 alpha-2 in upper case ("" is refused); derived from '
            "the client IP when absent, ZZ when unknown.",
        },
        "page_url": _nullable(_text(2048)),
        "referrer": _nullable(_text(2048)),
        "product_id": _nullable(_text(128)),
        "category": _nullable(_text(128)),
        "price": _nullable(MONEY),
        "quantity": _nullable(
            {"type": "integer", "minimum": -MAX_QUANTITY, "maximum": MAX_QUANTITY}
        ),
        "currency": {
            "type": "string",
            "enum": ["", *sorted(CURRENCY_CODES)],
            "nullable": True,
            "description": "ISO 4217 in upper case, or empty.",
        },
        "order_id": _nullable(_text(128)),
        "revenue": _nullable(MONEY),
        "search_query": _nullable(_text(512)),
        "properties": {
            "nullable": True,
            "type": "object",
            "maxProperties": PROPERTIES_MAX_KEYS,
            "additionalProperties": True,
            "description": "Free-form: at most 5 levels deep and 8 KB as JSON; finite numbers "
            "within ±2^64; no NUL in strings.",
        },
    }


def _event_variant(event_type: str | None) -> dict[str, Any]:
    """One event type (None: any custom name): its own required fields, which may then be
    neither empty nor null."""
    properties = _event_properties()
    if event_type is None:
        properties["event_type"] = CUSTOM_EVENT_NAME
    else:
        properties["event_type"] = {"type": "string", "enum": [event_type]}
    required_here = REQUIRED_BY_TYPE.get(event_type, ())
    for name in required_here:
        schema = {key: value for key, value in properties[name].items() if key != "nullable"}
        if schema.get("type") == "string":
            schema["minLength"] = 1
        properties[name] = schema
    if event_type in POSITIVE_QUANTITY_TYPES:
        properties["quantity"] = {**properties["quantity"], "minimum": 1}
    return {
        "type": "object",
        "title": event_type or "custom",
        "properties": properties,
        "required": COMMON_REQUIRED + list(required_here),
        "anyOf": IDENTITY,
        "additionalProperties": False,
    }


def _components() -> dict[str, Any]:
    return {
        "Event": {
            "description": "One event. Which fields are required depends on event_type.",
            "oneOf": [
                *({"$ref": f"{REF}Event_{event_type}"} for event_type in EVENT_TYPES),
                {"$ref": f"{REF}Event_custom"},
            ],
        },
        **{f"Event_{event_type}": _event_variant(event_type) for event_type in EVENT_TYPES},
        "Event_custom": _event_variant(None),
        "EventBatch": {
            "type": "object",
            "properties": {
                "events": {
                    "type": "array",
                    "maxItems": settings.INGEST_MAX_BATCH_EVENTS,
                    "items": {
                        "description": "An Event. Each item is validated on its own: one that "
                        "is not a valid Event is rejected in its result, not the batch."
                    },
                }
            },
            "required": ["events"],
        },
        "FieldError": FIELD_ERROR,
        "Error": ERROR,
        "EventResult": ITEM_RESULT,
        "EventIngestResult": INGEST_RESULT,
        "EventBatchResult": BATCH_RESULT,
        "EventStats": STATS,
        "EventRecent": RECENT,
        "EventPage": PAGE,
        "Health": HEALTH,
    }


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF + schema_name}}},
    }


AUTH_ERROR_TEXTS = {
    401: "No or an unknown ingestion key (field Authorization).",
    403: "The key may not do this (field Authorization, rule permission).",
    429: "Rate limit; retry_after_seconds says when to retry.",
}
AUTH_ERRORS = {str(code): _json("Error", text) for code, text in AUTH_ERROR_TEXTS.items()}
READ_400 = (
    "A parameter breaks its rule (field and rule in errors): a value of the wrong type or "
    "out of range, an unknown parameter (rule unknown_parameter), or an until not after its "
    "since (rule after_since)."
)
INGEST_ERRORS = {
    **AUTH_ERRORS,
    "413": _json("Error", "Body or batch too large (rule max_size or max_items)."),
    "415": _json("Error", "Content-Type is not application/json."),
    "503": _json("Error", "The database is unavailable; resending is safe."),
}
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/events/", "post"): {
        "requestBody": {"required": True, **_json("Event", "One event.")},
        "responses": {
            "201": _json("EventIngestResult", "Stored."),
            "200": _json("EventIngestResult", "Already stored (same event_id): duplicate."),
            "400": _json(
                "Error",
                "Malformed JSON, or the event was rejected (validation_failed: kept in "
                "quarantine, errors name each field and rule).",
            ),
            **INGEST_ERRORS,
        },
    },
    ("/events/batch/", "post"): {
        "requestBody": {"required": True, **_json("EventBatch", "Events to ingest.")},
        "responses": {
            "200": _json(
                "EventBatchResult",
                "One result per event, by index; rejected events do not fail the batch.",
            ),
            "400": _json("Error", "Malformed JSON, not an object, or no events list."),
            **INGEST_ERRORS,
        },
    },
    ("/events/stats/", "get"): {
        "responses": {"200": _json("EventStats", "Totals over stored events."), **AUTH_ERRORS}
    },
    ("/events/recent/", "get"): {
        "responses": {
            "200": _json(
                "EventRecent",
                "Newest events first: by receipt (order=received, the default) or by event "
                "time (order=timestamp).",
            ),
            "400": _json("Error", READ_400),
            **AUTH_ERRORS,
        }
    },
    ("/events/", "get"): {
        "responses": {
            "200": _json("EventPage", "One page of events, in (order, id) order."),
            "400": _json(
                "Error",
                READ_400 + " A cursor not from this API (rule invalid) or made for other "
                "filters or another order (rule filters_mismatch).",
            ),
            **AUTH_ERRORS,
        }
    },
    ("/health/", "get"): {
        "responses": {
            "200": _json("Health", "ok, or degraded (only Redis down: the web still serves)."),
            "503": _json("Health", "down: the database does not answer."),
        }
    },
    ("/health/ready/", "get"): {
        "responses": {
            "200": _json("Health", "The database answers: send traffic."),
            "503": _json("Health", "The database does not answer within a second."),
        }
    },
    ("/health/live/", "get"): {
        "responses": {"200": _json("Health", "The process answers; nothing else is asked.")}
    },
}
# The reads' query parameters: an empty value counts as absent (DRF's form handling).
READ_OPERATIONS = {("/events/recent/", "get"), ("/events/", "get")}


def error_response(description: str) -> OpenApiResponse:
    """An error answer in the shared shape, for a view's extend_schema."""
    return OpenApiResponse(response={"$ref": REF + "Error"}, description=description)


def api_document_complete(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the shapes above, on both URL prefixes."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(_components())
    for path, operations in result.get("paths", {}).items():
        key_path = path.removeprefix("/api/v1")
        for method, operation in operations.items():
            override = OPERATIONS.get((key_path, method))
            if override:
                operation.update(override)
            if (key_path, method) in READ_OPERATIONS:
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "query" and not parameter.get("required"):
                        parameter["allowEmptyValue"] = True
    return result
