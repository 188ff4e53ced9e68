"""`POST /identify` and `POST /alias` (also under /api/v1/): our own API's identity calls.

Thin: the input shapes below, then one service (`person_identify`, `person_alias`). Same keys,
scopes, throttle and error shape as `/events`; a refusal is a 400 naming the field and the rule.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from events import services
from events.api import _IngestView, _parsed_body
from events.api_read import BoundedDateTimeField
from events.openapi import AUTH_ERROR_TEXTS, error_response
from events.parsers import BoundedJSONParser
from events.schema import PROPERTIES_MAX_BYTES, PROPERTIES_MAX_DEPTH, PROPERTIES_MAX_KEYS

ID_MAX_CHARS = 128
SOURCE = "api"


class _StringIdField(serializers.RegexField):
    """An id as the document types it: a JSON string (DRF would turn a number into one)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _id_field(*, required: bool, help_text: str) -> serializers.RegexField:
    # As stored: untrimmed, printable enough for PostgreSQL text (never NUL).
    return _StringIdField(
        r"^[^\x00]+$" if required else r"^[^\x00]*$",
        max_length=ID_MAX_CHARS,
        required=required,
        allow_null=not required,
        allow_blank=not required,
        trim_whitespace=False,
        help_text=help_text,
    )


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


class TraitsField(serializers.DictField):
    """A JSON object stored on the person: bounded like an event's properties."""

    default_error_messages = {
        "max_keys": f"At most {PROPERTIES_MAX_KEYS} keys are allowed.",
        "max_depth": f"May nest at most {PROPERTIES_MAX_DEPTH} levels deep.",
        "max_size": f"Must serialize to at most {PROPERTIES_MAX_BYTES} bytes.",
        "no_nul_bytes": "Strings may not contain NUL bytes.",
        "json_value": "Cannot be stored as JSON (unpaired surrogates, numbers beyond 64 bits).",
    }

    def to_internal_value(self, data: Any) -> dict:
        value = super().to_internal_value(data)
        if len(value) > PROPERTIES_MAX_KEYS:
            self.fail("max_keys")
        if _depth(value) > PROPERTIES_MAX_DEPTH:
            self.fail("max_depth")
        try:
            encoded = orjson.dumps(value)
        except TypeError:
            self.fail("json_value")
        if len(encoded) > PROPERTIES_MAX_BYTES:
            self.fail("max_size")
        if b"\\u0000" in encoded:
            self.fail("no_nul_bytes")
        return value


class _CallIn(serializers.Serializer):
    """Fields we do not know are ignored: SDKs send more than we keep."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["timestamp"] = attrs.get("timestamp") or timezone.now()
        return attrs


class IdentifyIn(_CallIn):
    user_id = _id_field(required=False, help_text="Your id of the person (at least one id).")
    anonymous_id = _id_field(required=False, help_text="The device's or browser's anonymous id.")
    traits = TraitsField(required=False, allow_null=True, help_text="Stored on the person.")
    timestamp = BoundedDateTimeField(required=False, allow_null=True, help_text="Default: now.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if not attrs.get("user_id") and not attrs.get("anonymous_id"):
            raise serializers.ValidationError(
                {"user_id": ["Send user_id or anonymous_id (or both)."]}, "required"
            )
        attrs["traits"] = attrs.get("traits") or {}
        return attrs


class AliasIn(_CallIn):
    previous_id = _id_field(required=True, help_text="The id given up (usually anonymous).")
    user_id = _id_field(required=True, help_text="The person's id from now on.")
    timestamp = BoundedDateTimeField(required=False, allow_null=True, help_text="Default: now.")


_ANSWER = inline_serializer("IdentityCallOut", {"status": serializers.CharField()})
_RESPONSES = {
    200: _ANSWER,
    400: error_response(
        "Malformed JSON, not an object, or a field breaking its rule (errors name field and rule)."
    ),
    **{code: error_response(text) for code, text in AUTH_ERROR_TEXTS.items()},
    413: error_response("Body too large (rule max_size)."),
    415: error_response("Content-Type is not application/json."),
    503: error_response("The database is unavailable; resending is safe."),
}


def _validated(request: Request, shape: type[serializers.Serializer]) -> dict[str, Any]:
    payload = _parsed_body(request)
    if not isinstance(payload, dict):
        raise serializers.ValidationError({"body": ["Send a JSON object."]}, "object")
    serializer = shape(data=payload)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PersonIdentifyApi(_IngestView):
    # JSON only: text/plain bodies are for browser beacons to /events (ADR 0018).
    parser_classes = [BoundedJSONParser]
    """Store traits on a person; with both ids, link the anonymous id to the user id."""

    @extend_schema(
        request=IdentifyIn,
        responses=_RESPONSES,
        examples=[
            OpenApiExample(
                "Identify",
                value={"user_id": "user_12345", "anonymous_id": "a1b2", "traits": {"plan": "pro"}},
                request_only=True,
            )
        ],
        summary="Identify a person",
    )
    def post(self, request: Request) -> Response:
        data = _validated(request, IdentifyIn)
        services.person_identify(
            user_id=data.get("user_id") or None,
            anonymous_id=data.get("anonymous_id") or None,
            traits=data["traits"],
            timestamp=data["timestamp"],
            source=SOURCE,
        )
        return Response({"status": "ok"}, status=status.HTTP_200_OK)


class PersonAliasApi(_IngestView):
    parser_classes = [BoundedJSONParser]
    """Make previous_id's person part of user_id's: counted as one person from then on."""

    @extend_schema(
        request=AliasIn,
        responses=_RESPONSES,
        examples=[
            OpenApiExample(
                "Alias", value={"previous_id": "a1b2", "user_id": "user_12345"}, request_only=True
            )
        ],
        summary="Alias one id to another",
    )
    def post(self, request: Request) -> Response:
        data = _validated(request, AliasIn)
        services.person_alias(
            previous_id=data["previous_id"],
            user_id=data["user_id"],
            timestamp=data["timestamp"],
            source=SOURCE,
        )
        return Response({"status": "ok"}, status=status.HTTP_200_OK)


def identity_document_complete(result: dict[str, Any], generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: an identity call needs a body (its serializer has
    no required field, so the document would otherwise say the body is optional)."""
    for path, operations in result.get("paths", {}).items():
        if path.removeprefix("/api/v1") in {"/identify/", "/alias/"} and "post" in operations:
            operations["post"].setdefault("requestBody", {})["required"] = True
    return result
