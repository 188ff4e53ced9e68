"""The base of the PostHog and Snowplow views: keys, limits, throttling and refusals as on
/events (a request refused as a whole is kept, bounded, in quarantine when it is
authenticated or anonymous sending is allowed)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.http import HttpResponse
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.views import APIView

from events import services
from events.parsers import BoundedJSONParser, PayloadTooLarge
from events.permissions import CanIngest
from events.renderers import OrjsonRenderer
from events.schema import FieldError
from trackers.common import TrackerKeyAuthentication, ingest_source, principal_for_key

_PARSE_ERROR = "_tracker_parse_error"


def cors_open(response: HttpResponse) -> HttpResponse:
    """Readable from any page: for answers that are the same for everyone and hold nothing
    (PostHog's flags and remote config, analytics.js's settings)."""
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type, Content-Encoding"
    response["Access-Control-Max-Age"] = "600"
    return response


class BodyRefused(APIException):
    """A body of the wrong shape for its protocol: 400 naming the field and rule."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field, self.rule = field, rule


def body_data(request: Request) -> Any:
    """request.data, or None when the body could not be parsed (the error is kept on the
    request for the view to refuse): DRF parses a body once, and answers a second read of a
    failed parse with an empty dict, so the key lookup must not swallow the error."""
    if hasattr(request, _PARSE_ERROR):
        return None
    try:
        return request.data
    except (ParseError, PayloadTooLarge, UnsupportedMediaType, APIException) as exc:
        setattr(request, _PARSE_ERROR, exc)
        return None


class BodyKeyAuthentication(TrackerKeyAuthentication):
    """The shared key places (Basic user, Bearer, X-API-Key, query), then the key the
    protocol's body carries (`view.body_key(data)`)."""

    def authenticate(self, request):
        found = super().authenticate(request)
        if found is not None:
            return found
        view = request.parser_context.get("view") if request.parser_context else None
        data = body_data(request) if request.method == "POST" else None
        raw_key = view.body_key(request, data) if view is not None else None
        if raw_key is None:
            return None
        principal = principal_for_key(raw_key)
        return principal, principal


class TrackerIngestView(APIView):
    """Keys wherever the SDK puts them, the write scope, the ingest throttle, bounded bodies."""

    authentication_classes = [BodyKeyAuthentication]
    permission_classes = [CanIngest]
    throttle_classes: list = []  # set per view: events.throttling.IngestThrottle
    renderer_classes = [OrjsonRenderer]
    parser_classes = [BoundedJSONParser]
    source = "api"  # the protocol, stored as each event's source

    def body_key(self, request: Request, data: Any) -> str | None:
        return None

    def body_limit(self) -> int:
        return settings.INGEST_MAX_BODY_BYTES

    def parsed_body(self, request: Request) -> Any:
        """The parsed body; an unparseable, oversize or empty one is kept and refused."""
        data = body_data(request)
        error = getattr(request, _PARSE_ERROR, None)
        if error is not None:
            self.refuse(request, error, getattr(error, "raw_body", b""))
        if request.stream is None and not data:
            self.refuse(request, BodyRefused("body", "json", "Request body is empty."), b"")
        return data

    def refuse(self, request: Request, exc: APIException, raw_body: Any) -> NoReturn:
        if isinstance(exc, UnsupportedMediaType):
            field, rule = "Content-Type", "application/json"
        else:
            field, rule = getattr(exc, "field", "body"), getattr(exc, "rule", "json")
        error = FieldError(field, rule, str(exc.detail))
        exc.rejected_id = services.request_rejected_store(
            raw_body, error, source=ingest_source(request, self.source)
        )
        raise exc

    def batch_bounded(self, request: Request, items: list, body: Any, field: str) -> None:
        limit = settings.INGEST_MAX_BATCH_EVENTS
        if len(items) > limit:
            error = PayloadTooLarge(
                f"A batch holds at most {limit} events; this one has {len(items)}.",
                field=field,
                rule="max_items",
            )
            self.refuse(request, error, body)
