"""Segment's HTTP tracking API (`/v1/batch`, `/v1/track`, ...): thin views over the mapping and
the ingestion service. RudderStack's SDKs post the same messages to the same paths.

Answers: 200 `{"success": true}` (with our counts and per-message results) when the request was
read; a single message that was refused answers 400 with its reasons (it is quarantined, like
every refused message of a batch); a body that is not JSON, not gzip as declared, or over
Segment's limits (32 KB a message, 500 KB a batch, inflated) answers 400/413/415 and is kept as
one rejected request.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events import services
from events.permissions import CanIngest
from events.renderers import OrjsonRenderer
from events.throttling import IngestThrottle
from trackers.common import (
    AnyJSONParser,
    TrackerKeyAuthentication,
    Translated,
    key_id_of,
    outcome_counts,
    parsed_body,
    request_refuse,
    translated_ingest,
)
from trackers.segment.mapping import (
    BATCH_MAX_BYTES,
    MESSAGE_MAX_BYTES,
    SOURCE,
    IdentityCall,
    message_translate,
)

BATCH_MAX_MESSAGES = 2500  # 500 KB of the smallest useful messages; Segment names no count


def _when(value: str | None, received_at: dt.datetime) -> dt.datetime:
    """An identity call's time; the receipt time when it has none or it does not parse."""
    if value:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return received_at
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return received_at


def _identity_apply(call: IdentityCall, received_at: dt.datetime) -> None:
    when = _when(call.timestamp, received_at)
    if call.kind == "alias":
        services.person_alias(
            previous_id=call.previous_id, user_id=call.user_id, timestamp=when, source=SOURCE
        )
        return
    services.person_identify(
        user_id=call.user_id or None,
        anonymous_id=call.anonymous_id or None,
        traits=call.traits or {},
        timestamp=when,
        source=SOURCE,
    )


def messages_ingest(
    request: Request, messages: list[Any], *, call: str | None, batch_sent_at: Any
) -> list[dict[str, Any]]:
    """Translate and store a request's messages; one result per message, in order."""
    received_at = timezone.now()
    key_id = key_id_of(request)
    translated: list[Any] = [
        message_translate(
            message,
            call=call,
            key_id=key_id,
            batch_sent_at=batch_sent_at,
            received_at=received_at,
        )
        for message in messages
    ]
    events = [item for item in translated if isinstance(item, Translated)]
    outcomes = iter(translated_ingest(events, request=request, source=SOURCE))
    results = []
    for index, item in enumerate(translated):
        if isinstance(item, IdentityCall):
            _identity_apply(item, received_at)
            results.append({"index": index, "status": services.ACCEPTED, "call": item.kind})
            continue
        result = next(outcomes).as_dict()
        result["index"] = index
        results.append(result)
    return results


def _answer(results: list[dict[str, Any]]) -> dict[str, Any]:
    counts = outcome_counts(result["status"] for result in results)
    return {"success": True, **counts, "results": results}


class _SegmentApi(APIView):
    authentication_classes = [TrackerKeyAuthentication]
    permission_classes = [CanIngest]
    throttle_classes = [IngestThrottle]
    parser_classes = [AnyJSONParser]
    renderer_classes = [OrjsonRenderer]
    key_body_fields = ("writeKey",)


class SegmentBatchApi(_SegmentApi):
    """Segment's batch call: `{"batch": [message, ...], "sentAt": ...}`, up to 500 KB."""

    def body_limit(self) -> int:
        return BATCH_MAX_BYTES

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={code: OpenApiTypes.OBJECT for code in (200, 400, 401, 413, 415, 429)},
        summary="Segment / RudderStack batch (messages of any call type)",
    )
    def post(self, request: Request) -> Response:
        payload = parsed_body(request)
        if not isinstance(payload, dict):
            request_refuse(request, "body", "object", 'Send {"batch": [...]}.', payload)
        messages = payload.get("batch")
        if not isinstance(messages, list):
            rule = "required" if messages is None else "list"
            request_refuse(request, "batch", rule, "Send a list of messages: [...].", payload)
        if len(messages) > BATCH_MAX_MESSAGES:
            message = f"A batch holds at most {BATCH_MAX_MESSAGES} messages."
            request_refuse(request, "batch", "max_items", message, payload)
        results = messages_ingest(request, messages, call=None, batch_sent_at=payload.get("sentAt"))
        return Response(_answer(results))


class _SegmentCallApi(_SegmentApi):
    """One message of the call type the path names (its own `type` is not needed)."""

    call = ""

    def body_limit(self) -> int:
        return MESSAGE_MAX_BYTES

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={code: OpenApiTypes.OBJECT for code in (200, 400, 401, 413, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        payload = parsed_body(request)
        if not isinstance(payload, dict):
            request_refuse(request, "body", "object", "Send one message object.", payload)
        results = messages_ingest(request, [payload], call=self.call, batch_sent_at=None)
        body = _answer(results)
        if results[0]["status"] == services.REJECTED:
            body |= {"success": False, "error": "validation_failed"}
            body["detail"] = "The message was rejected and kept in quarantine."
            return Response(body, status=400)
        return Response(body)


class SegmentTrackApi(_SegmentCallApi):
    call = "track"


class SegmentPageApi(_SegmentCallApi):
    call = "page"


class SegmentScreenApi(_SegmentCallApi):
    call = "screen"


class SegmentIdentifyApi(_SegmentCallApi):
    call = "identify"


class SegmentGroupApi(_SegmentCallApi):
    call = "group"


class SegmentAliasApi(_SegmentCallApi):
    call = "alias"
