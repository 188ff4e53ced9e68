"""CORS for public (browser) keys, ADR 0018: preflights answered for listed origins only, the
`Origin` of each actual request checked against its key, and the CORS headers a listed origin
needs to read our answers (so the tracker can tell a refusal it must not retry from a failure).

Not a middleware: only the ingestion views (and the tracker protocols that choose to) speak
CORS, and secret keys, used by servers, never meet it. The origins of all active public keys
are read once per INGESTION_KEY_CACHE_SECONDS per process, as keys themselves are.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, status

from events.authentication import KeyPrincipal, key_principal_lookup
from events.models import IngestionKey, KeyKind
from events.throttling import PublicIngestThrottle

ALLOWED_METHODS = "POST, OPTIONS"
# X-Retry-Count: analytics.js (Segment) numbers its resends with it.
ALLOWED_HEADERS = "Content-Type, Content-Encoding, Authorization, X-API-Key, X-Retry-Count"
PREFLIGHT_MAX_AGE_SECONDS = 600

_origins_cache: list[tuple[float, frozenset[str]]] = []


def public_origins() -> frozenset[str]:
    """Every origin listed on an active public key (cached like keys: revocations apply within
    a second)."""
    now = time.monotonic()
    if _origins_cache and now - _origins_cache[0][0] < settings.INGESTION_KEY_CACHE_SECONDS:
        return _origins_cache[0][1]
    origins: set[str] = set()
    rows = IngestionKey.objects.filter(kind=KeyKind.PUBLIC, is_active=True).values_list(
        "allowed_origins", flat=True
    )
    for listed in rows:
        origins.update(listed)
    value = frozenset(origins)
    _origins_cache[:] = [(now, value)]
    return value


def public_origins_forget() -> None:
    """Drop the cached origins (tests that change keys within the cache's half second)."""
    _origins_cache.clear()


def request_origin(request: HttpRequest) -> str:
    return request.META.get("HTTP_ORIGIN", "")


class OriginNotAllowed(exceptions.PermissionDenied):
    """403: a public key used from a page whose origin is not listed on it (or no origin)."""

    default_code = "origin_not_allowed"
    field = "Origin"
    rule = "allowed_origin"


def origin_check(principal: KeyPrincipal, request: HttpRequest) -> None:
    """Raise OriginNotAllowed unless the request comes from an origin listed on the public key.
    Browsers always send `Origin` on a cross-origin POST (and on sendBeacon)."""
    origin = request_origin(request)
    if origin in principal.origins:
        return
    shown = origin or "no Origin header"
    raise OriginNotAllowed(
        f"This public key may be used only from {', '.join(sorted(principal.origins))}; "
        f"this request came from {shown}."
    )


def _allow_origin(response: HttpResponseBase, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = "Retry-After"


def cors_headers_add(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Let a listed origin read the answer (also a 4xx: the tracker must see it to stop
    retrying). Answers vary by Origin either way; requests without one cost a dict lookup."""
    origin = request_origin(request)
    if not origin:
        return response
    response.headers["Vary"] = (
        f"{response.headers['Vary']}, Origin" if "Vary" in response.headers else "Origin"
    )
    if origin in public_origins():
        _allow_origin(response, origin)
    return response


def is_preflight(request: HttpRequest) -> bool:
    return request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META


def preflight_response(request: HttpRequest, *, credentials: bool = False) -> HttpResponseBase:
    """204 with the CORS grant for an origin listed on a public key (on the key in `?key=` when
    one is given), else 403 with the reason and no grant, so the browser blocks the request.
    `credentials`: the grant also allows credentials (a tracker that sends them by default)."""
    origin = request_origin(request)
    raw_key = request.GET.get("key", "").strip()
    principal = key_principal_lookup(raw_key) if raw_key else None
    if raw_key:
        allowed = principal is not None and principal.public and origin in principal.origins
    else:
        allowed = bool(origin) and origin in public_origins()
    method = request.META.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD", "")
    if allowed and method == "POST":
        response = HttpResponse(status=status.HTTP_204_NO_CONTENT)
        _allow_origin(response, origin)
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
        response.headers["Vary"] = "Origin"
        if credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
        return response
    if allowed:
        field, rule = "Access-Control-Request-Method", "post_only"
        message = f"Only POST is allowed from a browser, not {method or 'no method'}."
    else:
        field, rule = "Origin", "allowed_origin"
        message = (
            f"The origin {origin or '(none)'} is not listed on "
            f"{'this' if raw_key else 'any active'} public key."
        )
    response = JsonResponse(
        {
            "error": "cors_denied",
            "detail": message,
            "errors": [{"field": field, "rule": rule, "message": message}],
        },
        status=status.HTTP_403_FORBIDDEN,
    )
    response.headers["Vary"] = "Origin"
    return response


# Public keys may come in the query string (ADR 0018): documented on the ingestion POSTs only.
PUBLIC_KEY_PARAMETER = OpenApiParameter(
    "key",
    str,
    OpenApiParameter.QUERY,
    description="A public (browser) key, when not sent as a header or as the body's `key`.",
)


def preflight_answering(view: Callable, *, credentials: bool = False) -> Callable:
    """Wrap a view so that CORS preflights are answered before it runs (they carry no key, so
    DRF's authentication and permissions must not see them). `credentials`: for a view whose
    class sets `cors_credentials` (see PublicKeyViewMixin)."""

    @functools.wraps(view)
    def answering(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        if is_preflight(request):
            return preflight_response(request, credentials=credentials)
        return view(request, *args, **kwargs)

    return answering


class PublicKeyViewMixin:
    """For an APIView that takes public keys (its URL wrapped in `preflight_answering`): the
    body's `key` is looked at, their own throttle, and CORS headers on every answer."""

    body_key_allowed = True  # read by events.authentication
    # Snowplow's browser tracker sends credentials by default (ADR 0037): its answers must allow
    # them, or the browser hides them. Nothing here reads a cookie: the key is the credential.
    cors_credentials = False

    def get_throttles(self):
        user = self.request.user
        if isinstance(user, KeyPrincipal) and user.public:
            return [PublicIngestThrottle()]
        return super().get_throttles()

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response = cors_headers_add(request._request, response)
        if self.cors_credentials and "Access-Control-Allow-Origin" in response.headers:
            response.headers["Access-Control-Allow-Credentials"] = "true"
        return response
