"""Believe a proxy's X-Forwarded-* headers only when the proxy is one we run.

Django's SECURE_PROXY_SSL_HEADER trusts X-Forwarded-Proto from any peer: with the server bound
to 0.0.0.0, anyone reaching it directly could claim HTTPS (and skip the redirect, or get secure
cookies over plain HTTP). This middleware runs first and, for a peer outside TRUSTED_PROXIES,
deletes the forwarded headers, so what Django and django-axes read later is the truth: for a
trusted peer, REMOTE_ADDR becomes the client address the proxy appended to X-Forwarded-For
(the right-most address that is not itself a trusted proxy), so login throttling counts
clients, not the proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

FORWARDED_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies)
    except ValueError as error:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {error}") from error


def is_trusted_proxy(address: str | None) -> bool:
    """Whether `address` (a peer IP) is in settings.TRUSTED_PROXIES."""
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_headers_apply(meta: dict) -> None:
    """Strip forwarded headers from an untrusted peer; take the client IP from a trusted one."""
    if not is_trusted_proxy(meta.get("REMOTE_ADDR")):
        for header in FORWARDED_HEADERS:
            meta.pop(header, None)
        return
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted_proxy(hop):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return  # a garbled header: keep the proxy's own address
            meta["REMOTE_ADDR"] = hop
            return


class TrustedProxyMiddleware:
    """First in MIDDLEWARE (and in the ingestion fast path's chain)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        forwarded_headers_apply(request.META)
        return self.get_response(request)
