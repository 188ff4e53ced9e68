"""HTTP API for events. Thin: parse, call one service or selector, shape the response."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events import selectors, services
from events.authentication import KeyPrincipal
from events.parsers import BoundedJSONParser, MalformedJson, PayloadTooLarge
from events.permissions import CanIngest, CanReadEvents
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
    event_type = serializers.ChoiceField(
        choices=[
            "page_view",
            "product_view",
            "search",
            "add_to_cart",
            "remove_from_cart",
            "checkout_start",
            "purchase",
        ]
    )
    timestamp = serializers.DateTimeField(help_text="ISO-8601, any offset; stored in UTC.")
    sent_at = serializers.DateTimeField(
        required=False, help_text="Client clock when sent; corrects clock skew."
    )
    user_id = serializers.CharField(max_length=128)
    session_id = serializers.CharField(max_length=128)
    device_type = serializers.ChoiceField(choices=["desktop", "mobile", "tablet", "other"])
    country = serializers.CharField(help_text="ISO 3166-1 alpha-2, e.g. US")
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


def _source(request: Request) -> services.IngestSource:
    user = request.user
    key_id = user.key_id if isinstance(user, KeyPrincipal) else None
    return services.IngestSource(key_id=key_id, ip=request.META.get("REMOTE_ADDR") or None)


def _parsed_body(request: Request, view: APIView):
    """request.data, keeping a body that is not JSON as a rejected event before refusing it."""
    try:
        return request.data
    except MalformedJson as exc:
        rejected_id = services.malformed_body_store(
            exc.raw_body, str(exc.detail), source=_source(request)
        )
        raise MalformedJson(
            f"{exc.detail} (kept as rejected event {rejected_id})", exc.raw_body
        ) from None


class _IngestView(APIView):
    parser_classes = [BoundedJSONParser]
    permission_classes = [CanIngest]
    throttle_classes = [IngestThrottle]


class EventIngestApi(_IngestView):
    """Ingest one event. Idempotent by event_id: a repeat returns 200 with duplicate: true."""

    max_body_bytes = settings.INGEST_MAX_EVENT_BYTES

    @extend_schema(
        request=EventInSerializer,
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("README example", value=README_EVENT, request_only=True)],
        summary="Ingest one event",
    )
    def post(self, request: Request) -> Response:
        payload = _parsed_body(request, self)
        outcome = services.event_ingest(payload, source=_source(request))
        body = outcome.as_dict()
        body.pop("index")
        if outcome.status == services.REJECTED:
            body.update(
                error="validation_failed",
                detail="The event was rejected and kept in quarantine.",
            )
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        body["duplicate"] = outcome.status == services.DUPLICATE
        code = status.HTTP_200_OK if body["duplicate"] else status.HTTP_201_CREATED
        return Response(body, status=code)


class EventBatchIngestApi(_IngestView):
    """Ingest up to INGEST_MAX_BATCH_EVENTS events; one result per event, by index."""

    @extend_schema(
        request=EventBatchInSerializer,
        responses={200: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Batch", value={"events": [README_EVENT]}, request_only=True)],
        summary="Ingest a batch of events",
    )
    def post(self, request: Request) -> Response:
        payload = _parsed_body(request, self)
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
            raise ValidationError({"events": ['Send {"events": [...]}: a list of events.']})
        events = payload["events"]
        limit = settings.INGEST_MAX_BATCH_EVENTS
        if len(events) > limit:
            raise PayloadTooLarge(
                f"A batch holds at most {limit} events; this one has {len(events)}.",
                field="events",
                rule="max_items",
            )
        outcomes = services.event_batch_ingest(events, source=_source(request))
        counts = {services.ACCEPTED: 0, services.DUPLICATE: 0, services.REJECTED: 0}
        for outcome in outcomes:
            counts[outcome.status] += 1
        return Response(
            {
                "accepted": counts[services.ACCEPTED],
                "duplicates": counts[services.DUPLICATE],
                "rejected": counts[services.REJECTED],
                "results": [outcome.as_dict() for outcome in outcomes],
            }
        )


class EventStatsApi(APIView):
    permission_classes = [CanReadEvents]
    throttle_classes = [ReadThrottle]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Event statistics")
    def get(self, request: Request) -> Response:
        return Response(selectors.event_stats())


class EventRecentQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=10)


class EventRecentApi(APIView):
    permission_classes = [CanReadEvents]
    throttle_classes = [ReadThrottle]

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="1..1000, default 10")],
        responses={200: OpenApiTypes.OBJECT},
        summary="Newest events first",
    )
    def get(self, request: Request) -> Response:
        query = EventRecentQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        events = selectors.events_recent(limit=query.validated_data["limit"])
        return Response({"events": events, "count": len(events)})


class HealthApi(APIView):
    """Component status; 503 when the database or the broker is down (for load balancers)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        health = selectors.system_health()
        code = status.HTTP_200_OK if health["status"] == "ok" else 503
        return Response(health, status=code)
