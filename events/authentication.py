"""Ingestion-key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`; a public
key (ADR 0018) may also travel as `?key=` or as `"key"` in a JSON body, since a browser's
`sendBeacon` cannot set headers. A secret key found there is refused: it would end up in access
logs and page sources.

Keys are looked up by SHA-256 hash and cached per process for INGESTION_KEY_CACHE_SECONDS
(half a second), so a request costs no extra query while a revocation (is_active unticked)
reaches every worker on every host within a second without any message between them; expiry is
checked on every request against the cached expiry time. `last_used_at` is written at most
once a minute per key.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from events.models import IngestionKey, KeyKind

_LAST_USED_WRITE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """The request.user of a request authenticated by an ingestion key."""

    key_id: int
    name: str
    scopes: frozenset[str]
    expires_at: dt.datetime | None = None
    public: bool = False
    origins: frozenset[str] = frozenset()
    is_authenticated: bool = True
    is_staff: bool = False
    is_active: bool = True

    def __str__(self) -> str:
        return f"ingestion key {self.name}"

    @property
    def can_read(self) -> bool:
        return "read" in self.scopes

    def has_scope(self, scope: str) -> bool:
        """A public key writes and nothing else, whatever a row edited by hand says."""
        if self.public and scope != "write":
            return False
        return scope in self.scopes

    def is_expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


_key_cache: dict[str, tuple[float, KeyPrincipal | None]] = {}
_last_used_written: dict[int, float] = {}


class KeyNotInHeader(exceptions.AuthenticationFailed):
    """A secret key sent where only public keys may travel (query string or body)."""

    field = "key"
    rule = "secret_key_in_header"


def _raw_key_from(request) -> str | None:
    # The Django request's META: DRF's Request hands `.META` over only after a failed lookup.
    meta = getattr(request, "_request", request).META
    header = meta.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    api_key = meta.get("HTTP_X_API_KEY")
    return api_key.strip() if api_key else None


_BODY_KEY_TYPES = ("application/json", "text/plain")


def _public_raw_key_from(request) -> str | None:
    """`?key=` or a JSON object body's `"key"` (views with `body_key_allowed` only). The body is
    peeked at only when it is small enough for the view and no header or query key was sent."""
    django_request = getattr(request, "_request", request)
    meta = django_request.META
    if "key=" in meta.get("QUERY_STRING", ""):
        value = django_request.GET.get("key", "").strip()
        if value:
            return value
    view = getattr(request, "parser_context", {}).get("view")
    if not getattr(view, "body_key_allowed", False):
        return None
    if not meta.get("CONTENT_TYPE", "").startswith(_BODY_KEY_TYPES):
        return None
    declared = meta.get("CONTENT_LENGTH", "")
    if not declared.isdigit() or not 0 < int(declared) <= view.body_limit():
        return None
    try:
        body = orjson.loads(django_request.body)
    except (orjson.JSONDecodeError, ValueError):
        return None  # the parser refuses it with its reason
    value = body.get("key") if isinstance(body, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def key_principal_lookup(raw_key: str) -> KeyPrincipal | None:
    key_hash = IngestionKey.hash_key(raw_key)
    now = time.monotonic()
    cached = _key_cache.get(key_hash)
    if cached and now - cached[0] < settings.INGESTION_KEY_CACHE_SECONDS:
        return cached[1]
    key = (
        IngestionKey.objects.filter(key_hash=key_hash, is_active=True)
        .only("id", "name", "scopes", "expires_at", "kind", "allowed_origins")
        .first()
    )
    principal = None
    if key is not None:
        principal = KeyPrincipal(
            key.id,
            key.name,
            frozenset(key.scopes),
            key.expires_at,
            public=key.kind == KeyKind.PUBLIC,
            origins=frozenset(key.allowed_origins),
        )
    if len(_key_cache) > 10_000:
        _key_cache.clear()
    _key_cache[key_hash] = (now, principal)
    return principal


def _touch_last_used(key_id: int) -> None:
    now = time.monotonic()
    if now - _last_used_written.get(key_id, 0.0) < _LAST_USED_WRITE_SECONDS:
        return
    _last_used_written[key_id] = now
    IngestionKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())


class IngestionKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw_key = _raw_key_from(request)
        in_header = raw_key is not None
        if not in_header:
            raw_key = _public_raw_key_from(request)
            if raw_key is None:
                return None
        principal = key_principal_lookup(raw_key)
        if principal is None:
            raise exceptions.AuthenticationFailed("Invalid or inactive ingestion key.")
        if not in_header and not principal.public:
            raise KeyNotInHeader(
                "Secret keys go in the Authorization header; only public (browser) keys may "
                "travel in the query string or the body. Revoke a key that was exposed."
            )
        if principal.is_expired(timezone.now()):
            raise exceptions.AuthenticationFailed("This ingestion key has expired.")
        _touch_last_used(principal.key_id)
        return principal, principal

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="ingestion"'


class IngestionKeyScheme(OpenApiAuthenticationExtension):
    """Documents ingestion keys in the OpenAPI schema (both header forms are accepted)."""

    target_class = "events.authentication.IngestionKeyAuthentication"
    name = ["IngestionKeyBearer", "IngestionKeyHeader"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]
