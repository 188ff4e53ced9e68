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

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events import services
from events.cors import PublicKeyViewMixin
from events.permissions import CanIngest
from events.renderers import OrjsonRenderer
from events.throttling import IngestThrottle
from trackers.api_base import cors_open
from trackers.common import (
    AnyJSONParser,
    TrackerAutoSchema,
    TrackerKeyAuthentication,
    Translated,
    key_id_of,
    outcome_counts,
    parsed_body,
    request_refuse,
    translated_ingest,
)
from trackers.openapi_posthog_snowplow import NOT_A_TOKEN
from trackers.segment import openapi
from trackers.segment.identity import IdentityCall
from trackers.segment.mapping import BATCH_MAX_BYTES, MESSAGE_MAX_BYTES, SOURCE
from trackers.segment.messages import message_translate

_REFUSALS = {code: OpenApiTypes.OBJECT for code in (401, 403, 413, 415, 429)}
BATCH_MAX_MESSAGES = 2500  # 500 KB of the smallest useful messages; Segment names no count


def identity_call_apply(call: IdentityCall, received_at: dt.datetime) -> None:
    """An identify or alias message on the person records (idempotent)."""
    when = call.timestamp or received_at
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
    """Translate a request's messages, apply its identify and alias calls, then store its
    events; one result per message, in order."""
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
    only_events = {Translated}.issuperset(map(type, translated))  # the common case, in C
    events = translated if only_events else [i for i in translated if isinstance(i, Translated)]
    context = {"call": call, "sent_at": batch_sent_at}
    context = {name: value for name, value in context.items() if isinstance(value, str)}
    for item in () if only_events else translated:  # first: the events then find the links
        if isinstance(item, IdentityCall):  # (sessions, ADR 0014)
            identity_call_apply(item, received_at)
    stored = translated_ingest(events, request=request, source=SOURCE, translation=context)
    if only_events:  # outcome i is message i's, and says so (its index)
        return [outcome.as_dict() for outcome in stored]
    outcomes = iter(stored)
    results = []
    for index, item in enumerate(translated):
        if isinstance(item, IdentityCall):
            results.append({"index": index, "status": services.ACCEPTED, "call": item.kind})
            continue
        result = next(outcomes).as_dict()
        result["index"] = index
        results.append(result)
    return results


def _answer(results: list[dict[str, Any]]) -> dict[str, Any]:
    counts = outcome_counts(result["status"] for result in results)
    return {"success": True, **counts, "results": results}


class _SegmentApi(PublicKeyViewMixin, APIView):
    """analytics.js posts from a shop's pages with a public key as its write key (Basic auth,
    so a preflight comes first): preflights answered for listed origins, the origin checked,
    CORS headers on every answer (ADR 0018, 0037). Server SDKs send secret keys, as before."""

    authentication_classes = [TrackerKeyAuthentication]
    permission_classes = [CanIngest]
    throttle_classes = [IngestThrottle]
    parser_classes = [AnyJSONParser]
    renderer_classes = [OrjsonRenderer]
    key_body_fields = ("writeKey",)
    schema = TrackerAutoSchema()
    source = SOURCE  # the protocol, kept with a request refused as a whole


class SegmentBatchApi(_SegmentApi):
    """Segment's batch call: `{"batch": [message, ...], "sentAt": ...}`, up to 500 KB."""

    def body_limit(self) -> int:
        return BATCH_MAX_BYTES

    @extend_schema(
        request={"application/json": openapi.batch_request(BATCH_MAX_MESSAGES)},
        responses={200: openapi.ANSWER, 400: OpenApiTypes.OBJECT, **_REFUSALS},
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

    def post(self, request: Request) -> Response:
        payload = parsed_body(request)
        if not isinstance(payload, dict):
            request_refuse(request, "body", "object", "Send one message object.", payload)
        results = messages_ingest(request, [payload], call=self.call, batch_sent_at=None)
        body = _answer(results)
        if results[0]["status"] == services.REJECTED:
            body |= {"success": False, "error": "validation_failed"}
            body["errors"] = results[0].get("errors", [])
            body["detail"] = "The message was rejected and kept in quarantine."
            return Response(body, status=400)
        return Response(body)


def _call_api(call: str, doc: str) -> type[_SegmentCallApi]:
    """The view of one call type, documented with that call's message shape."""

    def post(self, request: Request) -> Response:
        return _SegmentCallApi.post(self, request)

    # A function of its own per call: extend_schema keeps the document on the function.
    post = extend_schema(
        request={"application/json": openapi.call_request(call)},
        responses={200: openapi.ANSWER, 400: OpenApiTypes.OBJECT, **_REFUSALS},
        summary=f"Segment / RudderStack {call} call",
    )(post)
    name = f"Segment{call.title()}Api"
    return type(name, (_SegmentCallApi,), {"call": call, "post": post, "__doc__": doc})


SegmentTrackApi = _call_api("track", "An event by name (e-commerce spec v2 names mapped).")
SegmentPageApi = _call_api("page", "A page view.")
SegmentScreenApi = _call_api("screen", "A mobile screen view, stored as a page view.")
SegmentIdentifyApi = _call_api("identify", "Traits for a person; links an anonymous id.")
SegmentGroupApi = _call_api("group", "A person's group, stored as a custom event `group`.")
SegmentAliasApi = _call_api("alias", "Two ids of one person (previousId becomes userId's).")


WRITE_KEY_PARAMETER = OpenApiParameter(
    "token",
    str,
    OpenApiParameter.PATH,
    required=True,
    pattern=r"^[A-Za-z0-9_\-]{1,128}$",
    description="The write key analytics.js was given (echoed back, nothing is looked up).",
)


def segment_settings(write_key: str, api_host: str, protocol: str) -> dict[str, Any]:
    """What analytics.js loads from `<cdn>/v1/projects/<key>/settings` before it sends
    anything: our intake as its only destination (`Segment.io`, at `api_host`), nothing else to
    load (no device-mode destinations, middleware, plans or video plugins: each would be
    another script fetched from the CDN), and its own metrics off (they would go to Segment).
    Delivery is analytics.js's default (a request per call, no `keepalive`: Chromium aborted
    its keepalive requests, which need a preflight for their Basic auth, ADR 0037)."""
    return {
        "integrations": {
            "Segment.io": {"apiKey": write_key, "apiHost": api_host, "protocol": protocol}
        },
        "metrics": {"sampleRate": 0},
        "remotePlugins": [],
        "enabledMiddleware": {},
        "middlewareSettings": {},
        "legacyVideoPluginsEnabled": False,
    }


class SegmentSettingsApi(APIView):
    """`GET /v1/projects/<key>/settings`: analytics.js's settings when this host is its CDN
    (`analytics._cdn`, Segment's self-hosting set-up). The same for anyone and holds nothing
    but the key in the path, echoed only when it is made of key characters (the URL pattern):
    no key lookup, readable cross-origin."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [IngestThrottle]
    renderer_classes = [OrjsonRenderer]
    schema = TrackerAutoSchema()

    @extend_schema(
        parameters=[WRITE_KEY_PARAMETER],
        responses={200: OpenApiTypes.OBJECT, (404, "text/html"): NOT_A_TOKEN},
        summary="analytics.js settings (this host as its CDN)",
    )
    def get(self, request: Request, token: str) -> HttpResponse:
        api_host = f"{request.get_host()}/v1"
        body = OrjsonRenderer().render(segment_settings(token, api_host, request.scheme))
        return cors_open(HttpResponse(body, content_type="application/json"))
