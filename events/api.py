"""HTTP API for events. Thin: parse, call one service or selector, shape the response."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.http import HttpResponse, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, UnsupportedMediaType, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics_site.replica import replica_reads
from events import cors, selectors, services
from events.api_read import RECENT_ORDERS, EventListQuery, EventRecentQuery
from events.authentication import KeyPrincipal
from events.export_selectors import EVENT_EXPORT_COLUMNS, events_page
from events.parsers import (
    INGEST_PARSERS,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedContentEncoding,
    kept_body_bytes,
)
from events.permissions import CanIngest, CanReadEvents
from events.renderers import OrjsonRenderer
from events.schema import DEVICE_TYPES, EVENT_TYPES, FieldError
from events.throttling import IngestThrottle, ReadThrottle

README_EVENT = {
    "event_id": "123e4567-e89b-12d3-a456-426614174000",
    "event_type": "page_view",
    "timestamp": "2024-01-15T10:30:00Z",
    "user_id": "user_12345",
    "session_id": "session_67890",
    "page_url": "/products/laptop",
    "device_type": "desktop",
    "country": "US",
}


class EventInSerializer(serializers.Serializer):
    """Documentation of the wire format; validation itself is the compiled schema layer."""

    event_id = serializers.UUIDField()
    event_type = serializers.CharField(
        max_length=128,
        help_text=f"One of {', '.join(EVENT_TYPES)} (their fields apply), or any printable "
        "name: a custom event.",
    )
    timestamp = serializers.DateTimeField(help_text="ISO-8601, any offset; stored in UTC.")
    sent_at = serializers.DateTimeField(
        required=False, help_text="Client clock when sent; corrects clock skew."
    )
    user_id = serializers.CharField(
        required=False, max_length=128, help_text="Required unless anonymous_id is given."
    )
    anonymous_id = serializers.CharField(required=False, max_length=128)
    session_id = serializers.CharField(
        required=False, max_length=128, help_text="Derived when absent (30 min inactivity)."
    )
    device_type = serializers.ChoiceField(
        choices=list(DEVICE_TYPES), required=False, help_text="Derived from the User-Agent."
    )
    country = serializers.CharField(
        required=False, help_text="ISO 3166-1 alpha-2, e.g. US; derived from the IP."
    )
    page_url = serializers.CharField(required=False, max_length=2048)
    referrer = serializers.CharField(required=False, max_length=2048)
    product_id = serializers.CharField(required=False, max_length=128)
    category = serializers.CharField(required=False, max_length=128)
    price = serializers.DecimalField(required=False, max_digits=12, decimal_places=2)
    quantity = serializers.IntegerField(required=False)
    currency = serializers.CharField(required=False, help_text="ISO 4217, e.g. USD")
    order_id = serializers.CharField(required=False, max_length=128)
    revenue = serializers.DecimalField(required=False, max_digits=14, decimal_places=2)
    search_query = serializers.CharField(required=False, max_length=512)
    properties = serializers.DictField(required=False)


class EventBatchInSerializer(serializers.Serializer):
    events = EventInSerializer(many=True)


_JSON_RENDERER = OrjsonRenderer()


def _source(request: Request) -> services.IngestSource:
    user = request.user
    key_id = user.key_id if isinstance(user, KeyPrincipal) else None
    meta = request._request.META
    return services.IngestSource(
        key_id=key_id,
        ip=meta.get("REMOTE_ADDR") or None,
        user_agent=meta.get("HTTP_USER_AGENT", ""),
    )


def _body_prefix(request: Request) -> bytes:
    stream = request.stream
    return stream.read(kept_body_bytes()) if stream is not None else b""


def _refuse_request(
    request: Request,
    exc: APIException,
    raw_body: bytes | Any,
    *,
    field: str | None = None,
    rule: str | None = None,
) -> NoReturn:
    """Keep a request refused as a whole as one rejected event (bounded), then refuse it.

    Only requests that passed authentication get here, so an anonymous flood of junk cannot
    fill the quarantine outside development."""
    if isinstance(exc, UnsupportedMediaType):
        field, rule = "Content-Type", "application/json"
    field = field or getattr(exc, "field", "body")
    rule = rule or getattr(exc, "rule", "json")
    detail = exc.detail
    message = str(next(iter(detail.values()))[0]) if isinstance(detail, dict) else str(detail)
    error = FieldError(field, rule, message)
    exc.rejected_id = services.request_rejected_store(raw_body, error, source=_source(request))
    raise exc


def _respond(request: Request, body: dict[str, Any], status_code: int) -> HttpResponseBase:
    """An ingestion view's answer. To an API client (JSON negotiated) it is the JSON itself:
    a DRF Response renders the same bytes, with the same headers, through a template response
    (several header and content passes per event). A browser still gets the browsable API."""
    if request.accepted_renderer is _JSON_RENDERER:
        content = _JSON_RENDERER.render(body)
        return HttpResponse(content, status=status_code, content_type=_JSON_RENDERER.media_type)
    return Response(body, status=status_code)


def _parsed_body(request: Request) -> Any:
    """request.data; a body that is empty, not JSON, of the wrong type or too large is kept
    as a rejected event before it is refused (400, 415, 413)."""
    try:
        data = request.data
    except (MalformedJson, PayloadTooLarge, UnsupportedContentEncoding) as exc:
        _refuse_request(request, exc, exc.raw_body)
    except UnsupportedMediaType as exc:
        _refuse_request(request, exc, _body_prefix(request))
    if request.stream is None:  # no body at all: DRF does not even call the parser
        _refuse_request(request, MalformedJson("Request body is empty; send JSON.", b""), b"")
    if isinstance(request.user, KeyPrincipal) and request.user.public and isinstance(data, dict):
        data.pop("key", None)  # a public key sent in the body is not part of the event
    return data


class _IngestNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with what API clients send answered first: a body declared as exactly
    `application/json` goes to the JSON parser without parsing media types."""

    def select_parser(self, request, parsers):
        if parsers and request._request.META.get("CONTENT_TYPE") == parsers[0].media_type:
            return parsers[0]
        return super().select_parser(request, parsers)


class _EventApi(APIView):
    renderer_classes = [OrjsonRenderer, BrowsableAPIRenderer]

    @property
    def default_response_headers(self) -> dict[str, str]:
        """DRF's Allow and Vary headers, which depend on the view class only: built once per
        class (a copy each time, since DRF takes Vary out of it)."""
        cls = type(self)
        headers = cls.__dict__.get("_default_response_headers")
        if headers is None:
            headers = super().default_response_headers
            cls._default_response_headers = headers
        return dict(headers)

    def perform_content_negotiation(self, request, force=False):
        """JSON without DRF's negotiation unless a browser (HTML) or ?format= asks for more:
        API clients send `*/*` or `application/json`, and this runs on every event."""
        meta = request._request.META  # the Django request: no DRF attribute proxying
        if "html" in meta.get("HTTP_ACCEPT", "") or "format=" in meta.get("QUERY_STRING", ""):
            return super().perform_content_negotiation(request, force)
        return _JSON_RENDERER, _JSON_RENDERER.media_type


class _IngestView(cors.PublicKeyViewMixin, _EventApi):
    parser_classes = list(INGEST_PARSERS)
    content_negotiation_class = _IngestNegotiation

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        if not isinstance(response, Response):
            # An answer complete without rendering: nothing reads the parser context again.
            # Its view and request entries made reference cycles (view -> request -> context
            # -> view, request -> context -> request) that kept each request's objects alive
            # until the garbage collector's next pass, about 30 objects per event.
            context = self.request.parser_context
            context.pop("view", None)
            context.pop("request", None)
        return response

    permission_classes = [CanIngest]
    throttle_classes = [IngestThrottle]

    def body_limit(self) -> int:
        return settings.INGEST_MAX_BODY_BYTES


class EventIngestApi(_IngestView):
    """Ingest one event (POST). Idempotent by event_id: a repeat returns 200 with duplicate:
    true. GET on the same path lists stored events (read permission, read throttle)."""

    def body_limit(self) -> int:
        return settings.INGEST_MAX_EVENT_BYTES

    def get_permissions(self):
        if self.request.method == "GET":
            return [CanReadEvents()]
        return super().get_permissions()

    def get_throttles(self):
        if self.request.method == "GET":
            return [ReadThrottle()]
        return super().get_throttles()

    @extend_schema(
        parameters=[EventListQuery],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
        summary="List stored events, filtered, in pages",
        description=(
            "Pages in (order, id) ascending order, order being received_at (default) or "
            "timestamp. Pass next_cursor back as cursor for the next page, with the same "
            "filters; next_cursor is null when no further event exists. Each event stored "
            "before the first page is returned exactly once however many arrive while paging; "
            "those arriving meanwhile are returned at most once. Needs read permission."
        ),
    )
    def get(self, request: Request) -> Response:
        query = EventListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        with replica_reads():  # read-only: the replica when usable (ADR 0022)
            events, following = events_page(
                query.filters(),
                EVENT_EXPORT_COLUMNS,
                order_field=data["order"],
                after=data.get("after"),
                limit=data["limit"],
            )
        cursor = query.cursor_after(following) if following else None
        return Response(
            {"events": events, "count": len(events), "order": data["order"], "next_cursor": cursor}
        )

    # Django's View.setup() sets `self.head = self.get` on each instance of a view that has get
    # and no head: a bound method on its own instance, a reference cycle per ingested event.
    head = get

    @extend_schema(
        request=EventInSerializer,
        responses={
            201: OpenApiTypes.OBJECT,
            200: OpenApiTypes.OBJECT,
            400: OpenApiTypes.OBJECT,
            413: OpenApiTypes.OBJECT,
            415: OpenApiTypes.OBJECT,
        },
        parameters=[cors.PUBLIC_KEY_PARAMETER],
        examples=[OpenApiExample("README example", value=README_EVENT, request_only=True)],
        summary="Ingest one event",
    )
    def post(self, request: Request) -> HttpResponseBase:
        payload = _parsed_body(request)
        outcome = services.event_ingest(payload, source=_source(request))
        body = outcome.as_dict()
        del body["index"]
        if outcome.status == services.REJECTED:
            body["error"] = "validation_failed"
            body["detail"] = "The event was rejected and kept in quarantine."
            return _respond(request, body, status.HTTP_400_BAD_REQUEST)
        duplicate = outcome.status == services.DUPLICATE
        body["duplicate"] = duplicate
        return _respond(request, body, status.HTTP_200_OK if duplicate else status.HTTP_201_CREATED)


class EventBatchIngestApi(_IngestView):
    """Ingest up to INGEST_MAX_BATCH_EVENTS events; one result per event, by index."""

    @extend_schema(
        request=EventBatchInSerializer,
        responses={
            200: OpenApiTypes.OBJECT,
            400: OpenApiTypes.OBJECT,
            413: OpenApiTypes.OBJECT,
            415: OpenApiTypes.OBJECT,
        },
        parameters=[cors.PUBLIC_KEY_PARAMETER],
        examples=[OpenApiExample("Batch", value={"events": [README_EVENT]}, request_only=True)],
        summary="Ingest a batch of events",
    )
    def post(self, request: Request) -> HttpResponseBase:
        payload = _parsed_body(request)
        if not isinstance(payload, dict):
            error = ValidationError({"body": ['Send a JSON object: {"events": [...]}.']}, "object")
            _refuse_request(request, error, payload, field="body", rule="object")
        events = payload.get("events")
        if not isinstance(events, list):
            rule = "required" if events is None else "list"
            error = ValidationError({"events": ["Send a list of events: [...]."]}, rule)
            _refuse_request(request, error, payload, field="events", rule=rule)
        limit = settings.INGEST_MAX_BATCH_EVENTS
        if len(events) > limit:
            error = PayloadTooLarge(
                f"A batch holds at most {limit} events; this one has {len(events)}.",
                field="events",
                rule="max_items",
            )
            _refuse_request(request, error, payload)
        outcomes = services.event_batch_ingest(events, source=_source(request))
        counts = {services.ACCEPTED: 0, services.DUPLICATE: 0, services.REJECTED: 0}
        results = []
        for outcome in outcomes:
            counts[outcome.status] += 1
            results.append(outcome.as_dict())
        body = {
            "accepted": counts[services.ACCEPTED],
            "duplicates": counts[services.DUPLICATE],
            "rejected": counts[services.REJECTED],
            "results": results,
        }
        return _respond(request, body, status.HTTP_200_OK)


class EventStatsApi(_EventApi):
    permission_classes = [CanReadEvents]
    throttle_classes = [ReadThrottle]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Event statistics")
    def get(self, request: Request) -> Response:
        with replica_reads():
            stats = selectors.event_stats()
        return Response(stats)


class EventRecentApi(_EventApi):
    permission_classes = [CanReadEvents]
    throttle_classes = [ReadThrottle]

    @extend_schema(
        parameters=[EventRecentQuery],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
        summary="Newest events first",
        description="Newest first by receipt time (order=received, the default: an event just "
        "sent is on top whatever its timestamp) or by event time (order=timestamp).",
    )
    def get(self, request: Request) -> Response:
        query = EventRecentQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        order_field = RECENT_ORDERS[data["order"]]
        with replica_reads():
            events = selectors.events_recent(
                limit=data["limit"],
                offset=data["offset"],
                filters=query.filters(),
                order_field=order_field,
            )
        return Response({"events": events, "count": len(events), "order": order_field})
