"""Snowplow's collector endpoints. Thin: parse, map (trackers.snowplow), ingest
(trackers.translate), answer as a collector does: 200 once the events are stored or
quarantined (a tracker retries anything else but 400, 401, 403, 410 and 422), the pixel as a
1x1 GIF. The key is the tracker's app id `aid` (or our headers), ADR 0017."""

from __future__ import annotations

import base64
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request

from events.cors import PublicKeyViewMixin
from events.renderers import OrjsonRenderer
from events.throttling import IngestThrottle
from trackers.api_base import BodyRefused, TrackerIngestView
from trackers.common import outcome_counts
from trackers.openapi_posthog_snowplow import (
    SNOWPLOW_PIXEL_RESPONSES,
    SNOWPLOW_TP2_RESPONSES,
    SnowplowPayloadDataIn,
)
from trackers.snowplow import (
    SnowplowBodyError,
    snowplow_body_events,
    snowplow_event_map,
    snowplow_key,
    snowplow_user_links,
)
from trackers.translate import mapped_ingest

SOURCE = "snowplow"
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_JSON = OrjsonRenderer()
_NO_CACHE = "no-cache, no-store, must-revalidate"
_links_seen: dict[tuple[str, str], None] = {}  # this process's linked (duid, uid) pairs


def snowplow_links_forget() -> None:
    """Forget the pairs linked by this process (tests, whose database is emptied between them)."""
    _links_seen.clear()


class SnowplowPostApi(PublicKeyViewMixin, TrackerIngestView):
    """`POST /com.snowplowanalytics.snowplow/tp2`: a payload_data list of events. The browser
    tracker posts it from a shop's pages with a public key as its app id: preflights answered,
    the origin checked, credentials allowed (the tracker's default; ADR 0037)."""

    throttle_classes = [IngestThrottle]
    source = SOURCE
    cors_credentials = True

    def body_key(self, request: Request, data: Any) -> str | None:
        try:
            return snowplow_key(snowplow_body_events(data))
        except SnowplowBodyError:
            return None

    @extend_schema(
        request=SnowplowPayloadDataIn,
        responses=SNOWPLOW_TP2_RESPONSES,
        summary="Snowplow tracker protocol, POST",
        tags=["trackers"],
    )
    def post(self, request: Request) -> HttpResponse:
        body = self.parsed_body(request)
        try:
            events = snowplow_body_events(body)
        except SnowplowBodyError as exc:
            self.refuse(request, BodyRefused(exc.field, exc.rule, exc.message), body)
        self.batch_bounded(request, events, body, "data")
        mapped = [snowplow_event_map(event) for event in events]
        outcomes, _ = mapped_ingest(
            [*mapped, *snowplow_user_links(events, _links_seen)], request=request, source=SOURCE
        )
        answer = {
            **outcome_counts(o.status for o in outcomes),
            "results": [o.as_dict() for o in outcomes],
        }
        return HttpResponse(_JSON.render(answer), content_type=_JSON.media_type)


class SnowplowPixelApi(TrackerIngestView):
    """`GET /i`: one event in the query string (the pixel), answered with a 1x1 GIF."""

    throttle_classes = [IngestThrottle]
    key_query_params = ("aid",)
    source = SOURCE

    @extend_schema(
        parameters=[
            OpenApiParameter("e", str, description="Event kind: pv, pp, se, ue, tr, ti"),
            OpenApiParameter("aid", str, description="App id: the ingestion key"),
            OpenApiParameter("eid", str, description="Event id (UUID): the dedupe key"),
        ],
        responses=SNOWPLOW_PIXEL_RESPONSES,
        summary="Snowplow tracker protocol, GET pixel",
        tags=["trackers"],
    )
    def get(self, request: Request) -> HttpResponse:
        event = {name: request.query_params.get(name) for name in request.query_params}
        mapped_ingest([snowplow_event_map(event)], request=request, source=SOURCE)
        response = HttpResponse(PIXEL, content_type="image/gif")
        response["Cache-Control"] = _NO_CACHE
        return response
