"""Rate limits per ingestion key (or per user, or per client IP when anonymous).

A fixed-window counter: one INCR round trip to the shared cache per request (and an EXPIRE on
the first request of a window). DRF's
SimpleRateThrottle keeps every request's timestamp in a list that it reads and writes back
whole, which at ingestion rates (thousands a minute) costs more than the request itself.
Rates are read per request from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], so they can be
changed in settings (and in tests) without re-importing anything.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from events.authentication import KeyPrincipal

logger = structlog.get_logger(__name__)
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_parse(rate: str | None) -> tuple[int, int] | None:
    """'600/min' -> (600, 60); None or '' -> no limit."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0]]


# One redis-py client per Django Redis cache client (per thread, as Django's caches are): its
# get_client() builds a new one on every call, whose constructor copies ~170 response
# callbacks, which cost more than everything else a single event's throttling does. Django's
# client sends every write to its first server, whatever the key, so one client serves all.
_redis_clients: dict[int, tuple[RedisCacheClient, Any]] = {}


def _redis_client(cache_client: RedisCacheClient, full_key: str) -> Any:
    kept = _redis_clients.get(id(cache_client))
    if kept is not None and kept[0] is cache_client:
        return kept[1]
    client = cache_client.get_client(full_key, write=True)
    if len(_redis_clients) >= 64:  # caches rebuilt (settings changed in tests): start over
        _redis_clients.clear()
    _redis_clients[id(cache_client)] = (cache_client, client)
    return client


def _window_count(key: str, period: int) -> int:
    """Increment and return this window's counter (created with an expiry on first use)."""
    cache_client = getattr(cache, "_cache", None)
    get_client = getattr(cache_client, "get_client", None)
    if get_client is not None:  # Redis: one INCR (and an EXPIRE on a window's first request)
        full_key = cache.make_and_validate_key(key)
        if type(cache_client) is RedisCacheClient:
            client = _redis_client(cache_client, full_key)
        else:  # another client may pick a server by key
            client = get_client(full_key, write=True)
        count = int(client.incr(full_key))
        if count == 1:
            # The window's key names its window, so a key whose EXPIRE was lost (the process
            # died in between) never throttles a later window; it only stays in Redis.
            client.expire(full_key, period + 1)
        return count
    cache.add(key, 0, timeout=period + 1)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=period + 1)
        return 1


class _KeyOrIpThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def enabled(self) -> bool:
        return True

    def ident(self, request) -> str:
        user = request.user
        if isinstance(user, KeyPrincipal):
            return f"key-{user.key_id}"
        if user and user.is_authenticated:
            return f"user-{user.pk}"
        return f"ip-{self.get_ident(request)}"

    def allow_request(self, request, view) -> bool:
        if not self.enabled():
            return True
        limit = rate_parse(api_settings.DEFAULT_THROTTLE_RATES.get(self.scope))
        if limit is None:
            return True
        count_allowed, period = limit
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.scope}:{self.ident(request)}:{window}"
        try:
            count = _window_count(key, period)
        except Exception as exc:  # the cache is down: fail open, ingestion matters more
            logger.warning("throttle.cache_unavailable", scope=self.scope, error=str(exc)[:200])
            return True
        if count <= count_allowed:
            return True
        self.wait_seconds = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.wait_seconds


class IngestThrottle(_KeyOrIpThrottle):
    scope = "ingest"

    def enabled(self) -> bool:
        return settings.INGEST_THROTTLE_ENABLED


class ReadThrottle(_KeyOrIpThrottle):
    scope = "read"


class PublicIngestThrottle(_KeyOrIpThrottle):
    """Public (browser) keys: their own rate, per key and client IP, since one key serves
    every visitor of a site and anyone can copy it from the page (ADR 0018)."""

    scope = "ingest_public"

    def enabled(self) -> bool:
        return settings.INGEST_THROTTLE_ENABLED

    def ident(self, request) -> str:
        return f"{super().ident(request)}-ip-{self.get_ident(request)}"
