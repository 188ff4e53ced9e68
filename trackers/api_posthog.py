"""PostHog's capture endpoints and the feature-flag calls its SDKs make. Thin: parse, map
(trackers.posthog), ingest (trackers.translate), answer as PostHog does (200 `{"status": 1}`,
with our per-event results beside it)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from events.renderers import OrjsonRenderer
from events.throttling import IngestThrottle
from trackers.api_base import BodyRefused, TrackerIngestView
from trackers.common import outcome_counts
from trackers.openapi_posthog_snowplow import (
    ANY_OBJECT,
    FLAGS_RESPONSE,
    POSTHOG_CAPTURE_RESPONSES,
    PosthogCaptureIn,
)
from trackers.parsers import PosthogBodyParser
from trackers.posthog import (
    FLAGS_ANSWER,
    PosthogBodyError,
    posthog_body_messages,
    posthog_message_map,
)
from trackers.translate import mapped_ingest

SOURCE = "posthog"
_JSON = OrjsonRenderer()


def _json(body: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(_JSON.render(body), status=status, content_type=_JSON.media_type)


class PosthogCaptureApi(TrackerIngestView):
    """`POST /batch/`, `/capture/`, `/e/`, `/i/v0/e/`: a batch or one event, the key as
    `api_key` or `token` in the body (or in each event's properties, as posthog-js sends)."""

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
        outcomes, identity_calls = mapped_ingest(mapped, request=request, source=SOURCE)
        answer = {
            "status": 1,
            **outcome_counts(o.status for o in outcomes),
            "identity_calls": identity_calls,
        }
        answer["results"] = [outcome.as_dict() for outcome in outcomes]
        return _json(answer)


class PosthogFlagsApi(APIView):
    """`/flags/` and `/decide/`: no feature flags here, so every SDK carries on with all
    flags off (answered to anyone: it reveals and stores nothing)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [IngestThrottle]
    renderer_classes = [OrjsonRenderer]
    parser_classes = [PosthogBodyParser]

    @extend_schema(
        request={"application/json": ANY_OBJECT},
        responses={200: FLAGS_RESPONSE},
        summary="PostHog feature flags: none",
        tags=["trackers"],
    )
    def post(self, request: Request) -> HttpResponse:
        return _json(FLAGS_ANSWER)

    @extend_schema(
        responses={200: FLAGS_RESPONSE}, summary="PostHog feature flags: none", tags=["trackers"]
    )
    def get(self, request: Request) -> HttpResponse:
        return _json(FLAGS_ANSWER)
