"""What the short chain stands for, and the system checks that keep it honest.

VERIFIED_DJANGO_SERIES is a feature release (5.2), not a patch release: the pieces the fast
path copies (see the package docstring) change in feature releases, while patch releases of a
series only fix bugs and security issues; a warning on every patch would teach people to ignore
it. It was last verified on Django 5.2.19.
"""

from __future__ import annotations

from collections.abc import Iterable

import django
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.http import HttpResponse

VERIFIED_DJANGO_SERIES = (5, 2)

# settings.MIDDLEWARE entry -> the short chain's middleware that does its work
MIRRORED = {
    "django_prometheus.middleware.PrometheusBeforeMiddleware": "IngestMetricsMiddleware",
    "analytics_site.proxy.TrustedProxyMiddleware": "TrustedProxyMiddleware (the same class)",
    "django.middleware.security.SecurityMiddleware": "IngestHeadersMiddleware",
    "django.middleware.common.CommonMiddleware": "IngestHeadersMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "IngestHeadersMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware": "IngestMetricsMiddleware",
}
# settings.MIDDLEWARE entry -> why a POST without cookies to an ingestion path does not need it
NOT_NEEDED = {
    "whitenoise.middleware.WhiteNoiseMiddleware": "serves STATIC_URL only",
    "django.contrib.sessions.middleware.SessionMiddleware": "no cookie, so no session",
    "django.middleware.csrf.CsrfViewMiddleware": "DRF views are csrf_exempt; no session to ride",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "DRF authenticates by key",
    "django.contrib.messages.middleware.MessageMiddleware": "no pages, no messages",
    "django_htmx.middleware.HtmxMiddleware": "no pages, no htmx",
    "csp.middleware.CSPMiddleware": "JSON answers to API clients, no documents to protect",
    "axes.middleware.AxesMiddleware": "answers lockouts of the login pages only",
    "analytics_site.errors.DatabaseUnavailableMiddleware": "DRF's handler answers the 503 itself",
}


def middleware_unmirrored(middleware: Iterable[str]) -> list[str]:
    """The entries of a MIDDLEWARE list that the short chain would skip without knowing why."""
    return [path for path in middleware if path not in MIRRORED and path not in NOT_NEEDED]


def fastpath_check(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Error on a middleware the short chain does not mirror; warn on an unverified Django."""
    if not settings.INGEST_FASTPATH:
        return []
    messages: list[CheckMessage] = []
    unmirrored = middleware_unmirrored(settings.MIDDLEWARE)
    if unmirrored:
        messages.append(
            Error(
                f"MIDDLEWARE has {', '.join(unmirrored)}, which event POSTs on the ingestion "
                "fast path would skip.",
                hint="Mirror it in analytics_site/fastpath (or list it in checks.NOT_NEEDED "
                "with the reason), or set INGEST_FASTPATH=false.",
                id="fastpath.E001",
            )
        )
    if not hasattr(HttpResponse(), "_resource_closers"):
        messages.append(
            Error(
                "HttpResponse has no _resource_closers: the fast path's response close is stale.",
                hint="Set INGEST_FASTPATH=false until analytics_site/fastpath is updated.",
                id="fastpath.E002",
            )
        )
    if tuple(django.VERSION[:2]) != VERIFIED_DJANGO_SERIES:
        verified = ".".join(map(str, VERIFIED_DJANGO_SERIES))
        messages.append(
            Warning(
                f"The ingestion fast path copies parts of Django {verified} (request signal "
                f"receivers, middleware, HttpResponse.close); Django {django.get_version()} is "
                "installed.",
                hint="Check analytics_site/fastpath against the release notes, run the "
                "ingestion suites on both paths, then update VERIFIED_DJANGO_SERIES; or set "
                "INGEST_FASTPATH=false.",
                id="fastpath.W001",
            )
        )
    return messages
