"""`/metrics` for Prometheus: open outside production; in production only with
`Authorization: Bearer <METRICS_TOKEN>` or from an address in METRICS_ALLOWED_NETWORKS.

The peer address is REMOTE_ADDR (the connecting socket), never a forwarded header a client
could forge: put the scraper's network in the list, or give it the token.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_prometheus.exports import ExportToDjangoView


@cache
def _networks(
    cidrs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def _token_ok(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not token or header[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def _network_ok(request: HttpRequest) -> bool:
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


def metrics_view(request: HttpRequest) -> HttpResponse:
    if settings.METRICS_OPEN or _token_ok(request) or _network_ok(request):
        return ExportToDjangoView(request)
    response = JsonResponse(
        {
            "error": "forbidden",
            "detail": "/metrics needs Authorization: Bearer <METRICS_TOKEN> "
            "or a client address in METRICS_ALLOWED_NETWORKS.",
        },
        status=403,
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response
