"""The API document's shapes of the PostHog and Snowplow endpoints: only what the endpoint
refuses as a whole (the envelope); each message inside is judged on its own and refused in
the answer's results, as the SDKs expect (a 200 they do not retry)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from trackers.snowplow import PAYLOAD_DATA_SCHEMA

ERROR = {"$ref": "#/components/schemas/Error"}
ANY_OBJECT = {"type": "object", "additionalProperties": True}


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ERROR, description=description)


def _limits(max_items_rule: str) -> dict[int, Any]:
    return {
        400: _error("Not JSON, or not the protocol's envelope (field and rule named)."),
        401: _error("No key, or an unknown one (field Authorization)."),
        403: _error("The key may not write (field Authorization, rule permission)."),
        413: _error(f"Body too large, inflated or not (max_size), or too many ({max_items_rule})."),
        415: _error("A Content-Encoding other than gzip."),
        429: _error("Rate limit; retry_after_seconds says when to retry."),
    }


OUTCOMES = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "rejected": {"type": "integer"},
        "results": {"type": "array", "items": ANY_OBJECT},
    },
    "required": ["accepted", "duplicates", "rejected", "results"],
}


class PosthogCaptureIn(serializers.Serializer):
    """posthog-python's body; posthog-js's (a list, or one event with the key in
    properties.token; gzip or base64 form bodies) is accepted too. The key: `api_key` or
    `token` in the body, or an Authorization header."""

    batch = serializers.ListField(child=serializers.JSONField(), max_length=1000)


POSTHOG_CAPTURE_RESPONSES: dict[int, Any] = {
    200: OpenApiResponse(
        response={
            **OUTCOMES,
            "properties": {**OUTCOMES["properties"], "status": {"type": "integer", "enum": [1]}},
        },
        description='PostHog\'s `{"status": 1}`, with one result per event.',
    ),
    **_limits("batch, max_items"),
}
FLAGS_RESPONSE = OpenApiResponse(response=ANY_OBJECT, description="No flags: all off.")


class PosthogCaptureV1In(serializers.Serializer):
    """posthog-python's capture v1 body (`capture_mode="v1"`); the key in `Authorization:
    Bearer`. Each event as the SDK makes it (event, uuid, distinct_id, timestamp, options,
    properties, session_id); one that cannot be stored is answered `drop` by its uuid."""

    batch = serializers.ListField(child=serializers.JSONField(), max_length=1000)
    created_at = serializers.CharField(required=False, help_text="When sent: corrects skew.")


_V1_RESULT = {
    "type": "object",
    "properties": {
        "result": {"type": "string", "enum": ["ok", "drop"]},
        "details": {"type": "string"},
    },
    "required": ["result"],
}
POSTHOG_V1_RESPONSES: dict[int, Any] = {
    200: OpenApiResponse(
        response={
            **OUTCOMES,
            "properties": {
                **OUTCOMES["properties"],
                "results": {"type": "object", "additionalProperties": _V1_RESULT},
            },
        },
        description="A result per event uuid (its position when it has none): ok or drop.",
    ),
    **_limits("batch, max_items"),
}
NOT_A_TOKEN = OpenApiResponse(
    response=OpenApiTypes.STR, description="Not a key's characters: no such page (HTML)."
)
TOKEN_PARAMETER = OpenApiParameter(
    "token",
    str,
    OpenApiParameter.PATH,
    required=True,
    pattern=r"^[A-Za-z0-9_\-]{1,128}$",
    description="The project key posthog-js was given (echoed back, nothing is looked up).",
)


class SnowplowPayloadDataIn(serializers.Serializer):
    """A payload_data self-describing JSON: the tracker's events, each with `aid` (the key)."""

    schema = serializers.RegexField(PAYLOAD_DATA_SCHEMA.pattern)
    data = serializers.ListField(child=serializers.JSONField(), max_length=1000)


SNOWPLOW_TP2_RESPONSES: dict[int, Any] = {
    200: OpenApiResponse(response=OUTCOMES, description="Stored or quarantined, per event."),
    **_limits("data, max_items"),
}
SNOWPLOW_PIXEL_RESPONSES: dict[Any, Any] = {
    (200, "image/gif"): OpenApiResponse(
        response=OpenApiTypes.BINARY, description="A 1x1 GIF: stored or quarantined."
    ),
    **{code: answer for code, answer in _limits("-").items() if code in (401, 403, 429)},
}


class BodyKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Our headers, as on /events; the protocols' own places (HTTP Basic user, `api_key`,
    `aid`) are described on each operation."""

    target_class = "trackers.api_base.BodyKeyAuthentication"
    name = ["TrackerBodyKeyBearer", "TrackerBodyKeyHeader"]

    def get_security_requirement(self, auto_schema):
        """Either header: alternatives, not both at once."""
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]
