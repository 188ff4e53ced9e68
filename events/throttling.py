"""Rate limits per ingestion key (or per client IP when anonymous)."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from events.authentication import KeyPrincipal


class _KeyOrIpThrottle(SimpleRateThrottle):
    def get_cache_key(self, request, view):
        user = request.user
        if isinstance(user, KeyPrincipal):
            ident = f"key-{user.key_id}"
        elif user and user.is_authenticated:
            ident = f"user-{user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IngestThrottle(_KeyOrIpThrottle):
    scope = "ingest"

    def allow_request(self, request, view) -> bool:
        if not settings.INGEST_THROTTLE_ENABLED:
            return True
        return super().allow_request(request, view)


class ReadThrottle(_KeyOrIpThrottle):
    scope = "read"
