"""The answer shapes of the event API's OpenAPI document (events.openapi): errors, per-item
results, stats, pages and health. Plain JSON Schema dictionaries."""

from __future__ import annotations

REF = "#/components/schemas/"

FIELD_ERROR = {
    "type": "object",
    "properties": {
        "field": {"type": "string", "description": "The field (dotted path) or request part."},
        "rule": {"type": "string", "description": "The rule it broke, e.g. required, range."},
        "message": {"type": "string"},
        "rule_id": {"type": "integer", "description": "The stored quality rule, if one."},
    },
    "required": ["field", "rule", "message"],
}
ERROR = {
    "type": "object",
    "description": "Every error answer: a code, a sentence, and the fields and rules at fault.",
    "properties": {
        "error": {"type": "string", "description": "invalid, validation_failed, ..."},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": REF + "FieldError"}},
        "rejected_id": {
            "type": "integer",
            "description": "The quarantine row that keeps a refused body.",
        },
        "status": {"type": "string", "enum": ["rejected"]},
        "event_id": {"type": "string"},
        "retry_after_seconds": {"type": "number"},
    },
    "required": ["error", "detail"],
}
ITEM_RESULT = {
    "type": "object",
    "description": "What happened to one event: accepted (stored), duplicate (its event_id was "
    "stored before; nothing stored) or rejected (kept in quarantine, with the reasons).",
    "properties": {
        "index": {"type": "integer", "minimum": 0, "description": "Position in the batch."},
        "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
        "event_id": {"type": "string"},
        "id": {"type": "integer", "description": "The stored event's id."},
        "errors": {"type": "array", "items": {"$ref": REF + "FieldError"}},
        "warnings": {"type": "array", "items": {"$ref": REF + "FieldError"}},
        "rejected_id": {"type": "integer"},
    },
    "required": ["index", "status"],
}
INGEST_RESULT = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["accepted", "duplicate"]},
        "event_id": {"type": "string"},
        "id": {"type": "integer"},
        "duplicate": {"type": "boolean"},
        "warnings": {"type": "array", "items": {"$ref": REF + "FieldError"}},
    },
    "required": ["status", "duplicate"],
}
BATCH_RESULT = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "duplicates": {"type": "integer", "minimum": 0},
        "rejected": {"type": "integer", "minimum": 0},
        "results": {"type": "array", "items": {"$ref": REF + "EventResult"}},
    },
    "required": ["accepted", "duplicates", "rejected", "results"],
}
COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
STATS = {
    "type": "object",
    "properties": {
        "total_events": {"type": "integer"},
        "events_by_type": COUNTS,
        "events_by_device": COUNTS,
        "events_by_country": COUNTS,
        "events_last_hour": {"type": "integer"},
        "newest_event_timestamp": {"type": "string", "format": "date-time", "nullable": True},
        "rejected_events": {"type": "integer"},
        "validation_pass_rate": {"type": "number", "nullable": True},
        "generated_at": {"type": "string", "format": "date-time"},
    },
    "required": ["total_events", "rejected_events"],
}
RECENT = {
    "type": "object",
    "properties": {
        "events": {"type": "array", "items": {"type": "object"}},
        "count": {"type": "integer", "minimum": 0},
        "order": {
            "type": "string",
            "enum": ["received_at", "timestamp"],
            "description": "What the events are newest first by (receipt by default).",
        },
    },
    "required": ["events", "count"],
}
PAGE = {
    "type": "object",
    "properties": {
        **RECENT["properties"],
        "order": {"type": "string", "enum": ["received_at", "timestamp"]},
        "next_cursor": {
            "type": "string",
            "nullable": True,
            "description": "Pass as cursor for the next page; null after the last.",
        },
    },
    "required": ["events", "count", "order", "next_cursor"],
}
COMPONENT_STATUS = {
    "type": "object",
    "properties": {"status": {"type": "string"}},
    "required": ["status"],
    "additionalProperties": True,
}
HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
        "components": {"type": "object", "additionalProperties": COMPONENT_STATUS},
    },
    "required": ["status"],
}
