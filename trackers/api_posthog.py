"""PostHog's capture endpoints and what else its SDKs call: feature flags, and the remote config
posthog-js loads on start. Thin: parse, map (trackers.posthog, trackers.posthog_v1), ingest
(trackers.translate), answer as PostHog does (200 `{"status": 1}` with our per-event results
beside it; capture v1: a result per event uuid).

Flags and remote config store and reveal nothing (no flags, every optional feature off), so they
answer anyone, cross-origin too (`Access-Control-Allow-Origin: *`, no credentials): posthog-js
reads them from the shop's pages."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from events.cors import PublicKeyViewMixin
from events.renderers import OrjsonRenderer
from events.throttling import IngestThrottle
from trackers.api_base import BodyRefused, TrackerIngestView, cors_open
from trackers.common import outcome_counts
from trackers.mapping import MappedEvent
from trackers.openapi_posthog_snowplow import (
    ANY_OBJECT,
    FLAGS_RESPONSE,
    NOT_A_TOKEN,
    POSTHOG_CAPTURE_RESPONSES,
    POSTHOG_V1_RESPONSES,
    TOKEN_PARAMETER,
    PosthogCaptureIn,
    PosthogCaptureV1In,
)
from trackers.parsers import PosthogBodyParser
from trackers.posthog import (
    FLAGS_ANSWER,
    PosthogBodyError,
    posthog_body_messages,
    posthog_message_map,
)
from trackers.posthog_v1 import (
    posthog_v1_messages,
    remote_config,
    sdk_lib,
    v1_message_legacy,
    v1_result,
)
from trackers.translate import mapped_ingest

SOURCE = "posthog"
_JSON = OrjsonRenderer()


def _json(body: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(_JSON.render(body), status=status, content_type=_JSON.media_type)


def _sent_at_context(sent_at: Any) -> dict[str, Any]:
    """The body's `sent_at`, which each message's mapping read (for a replay's mapping)."""
    return {"sent_at": sent_at} if isinstance(sent_at, str) else {}


class PosthogCaptureApi(PublicKeyViewMixin, TrackerIngestView):
    """`POST /batch/`, `/capture/`, `/e/`, `/i/v0/e/`: a batch or one event, the key as
    `api_key` or `token` in the body (or in each event's properties, as posthog-js sends).
    posthog-js in a shop's pages uses a public key: its origins get the CORS grant (ADR 0018)."""

    parser_classes = [PosthogBodyParser]
    throttle_classes = [IngestThrottle]
    source = SOURCE

    def body_key(self, request: Request, data: Any) -> str | None:
        try:
            return posthog_body_messages(data)[1]
        except PosthogBodyError:
            return None

    @extend_schema(
        request={"application/json": PosthogCaptureIn},
        responses=POSTHOG_CAPTURE_RESPONSES,
        summary="PostHog capture (posthog-python, posthog-js)",
        tags=["trackers"],
    )
    def post(self, request: Request) -> HttpResponse:
        body = self.parsed_body(request)
        try:
            messages, _key, sent_at = posthog_body_messages(body)
        except PosthogBodyError as exc:
            self.refuse(request, BodyRefused(exc.field, exc.rule, exc.message), body)
        self.batch_bounded(request, messages, body, "batch")
        mapped = [posthog_message_map(message, sent_at=sent_at) for message in messages]
        outcomes, identity_calls = mapped_ingest(
            mapped, request=request, source=SOURCE, translation=_sent_at_context(sent_at)
        )
        answer = {
            "status": 1,
            **outcome_counts(o.status for o in outcomes),
            "identity_calls": identity_calls,
        }
        answer["results"] = [outcome.as_dict() for outcome in outcomes]
        return _json(answer)


class PosthogCaptureV1Api(TrackerIngestView):
    """`POST /i/v1/analytics/events` (capture v1): the key as `Authorization: Bearer`, an
    answer per event uuid (`ok`, or `drop` when quarantined: resending would not help)."""

    parser_classes = [PosthogBodyParser]
    throttle_classes = [IngestThrottle]
    source = SOURCE

    @extend_schema(
        request={"application/json": PosthogCaptureV1In},
        responses=POSTHOG_V1_RESPONSES,
        summary="PostHog capture v1 (posthog-python capture_mode=v1)",
        tags=["trackers"],
    )
    def post(self, request: Request) -> HttpResponse:
        body = self.parsed_body(request)
        try:
            events, created_at = posthog_v1_messages(body)
        except PosthogBodyError as exc:
            self.refuse(request, BodyRefused(exc.field, exc.rule, exc.message), body)
        self.batch_bounded(request, events, body, "batch")
        sdk = request.META.get("HTTP_POSTHOG_SDK_INFO", "")[:100]
        mapped = []
        for event in events:  # mapped as legacy messages, kept as sent
            item = posthog_message_map(
                v1_message_legacy(event, lib=sdk_lib(sdk)), sent_at=created_at
            )
            mapped.append(
                dataclasses.replace(item, original=event) if isinstance(item, MappedEvent) else item
            )
        context = {"format": "v1", "sdk": sdk, **_sent_at_context(created_at)}
        outcomes, _calls = mapped_ingest(
            mapped, request=request, source=SOURCE, translation=context
        )
        stored = iter(outcomes)
        results: dict[str, Any] = {}
        for index, (event, item) in enumerate(zip(events, mapped, strict=True)):
            uuid = event.get("uuid") if isinstance(event, dict) else None
            key = uuid if isinstance(uuid, str) and uuid else str(index)
            if isinstance(item, MappedEvent):
                outcome = next(stored)
                results[key] = v1_result(outcome.status, [e.as_dict() for e in outcome.errors])
            else:
                results[key] = v1_result("accepted")
        return _json({**outcome_counts(o.status for o in outcomes), "results": results})


class PosthogFlagsApi(APIView):
    """`/flags/` and `/decide/`: no feature flags here, so every SDK carries on with all
    flags off (answered to anyone: it reveals and stores nothing)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [IngestThrottle]
    renderer_classes = [OrjsonRenderer]
    parser_classes = [PosthogBodyParser]

    def options(self, request: Request, *args, **kwargs) -> HttpResponse:
        return cors_open(HttpResponse(status=204))

    @extend_schema(
        request={"application/json": ANY_OBJECT},
        responses={200: FLAGS_RESPONSE},
        summary="PostHog feature flags: none",
        tags=["trackers"],
    )
    def post(self, request: Request) -> HttpResponse:
        return cors_open(_json(FLAGS_ANSWER))

    @extend_schema(
        responses={200: FLAGS_RESPONSE}, summary="PostHog feature flags: none", tags=["trackers"]
    )
    def get(self, request: Request) -> HttpResponse:
        return cors_open(_json(FLAGS_ANSWER))


class PosthogRemoteConfigApi(APIView):
    """`GET /array/<token>/config`: the remote config posthog-js loads on start. Every
    optional feature off and `hasFeatureFlags: false`, so it goes straight to capturing (at
    /e/), asking for no flags, recordings or surveys."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [IngestThrottle]
    renderer_classes = [OrjsonRenderer]

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        responses={200: FLAGS_RESPONSE, (404, "text/html"): NOT_A_TOKEN},
        summary="PostHog remote config: every feature off",
        tags=["trackers"],
    )
    def get(self, request: Request, token: str) -> HttpResponse:
        return cors_open(_json(remote_config(token)))


class PosthogRemoteConfigScriptApi(PosthogRemoteConfigApi):
    """`GET /array/<token>/config.js`: the same config as a script setting
    `window._POSTHOG_REMOTE_CONFIG[token]`, the form posthog-js's loader reads first."""

    @extend_schema(
        parameters=[TOKEN_PARAMETER],
        responses={
            (200, "application/javascript"): OpenApiTypes.STR,
            (404, "text/html"): NOT_A_TOKEN,
        },
        summary="PostHog remote config as a script",
        tags=["trackers"],
    )
    def get(self, request: Request, token: str) -> HttpResponse:
        # JSON text is a JavaScript literal; "<" escaped so it cannot close a script element.
        literal = orjson.dumps(remote_config(token)).decode().replace("<", "\\u003c")
        key = orjson.dumps(token).decode()
        body = (
            "(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};"
            f"window._POSTHOG_REMOTE_CONFIG[{key}]={{config:{literal},siteApps:[]}};}})();\n"
        )
        return cors_open(HttpResponse(body, content_type="application/javascript"))
