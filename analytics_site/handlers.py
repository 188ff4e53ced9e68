"""The WSGI handler: ingestion POSTs from API clients take a short middleware stack.

An event POST from an API client (no cookies) needs none of the session, CSRF, auth, messages,
htmx or static-file middleware: DRF authenticates it by ingestion key, throttles it and renders
it. Running the full stack anyway cost about a fifth of a single event's CPU. So the handler
keeps two middleware chains, built once: the settings' one for every other request, and a short
one (security headers, Content-Length, cheap Prometheus counters) for `POST` to the ingestion
paths without a `Cookie` header. A browser with a session (the browsable API form) still goes
through the full stack, so session authentication and CSRF work as before. Routing, auth,
permissions, throttling, parsing and errors stay in DRF and are the same on both paths.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch
from django.utils.module_loading import import_string
from django_prometheus.middleware import Metrics

# /events, /events/batch and the same under /api/v1/, with or without a trailing slash
# (the URL conf in events/urls.py accepts both).
INGEST_PATH = re.compile(r"^/(?:api/v1/)?events(?:/batch)?/?$")

INGEST_MIDDLEWARE = [
    "analytics_site.handlers.IngestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


def is_ingest_request(environ: dict) -> bool:
    """A POST to an ingestion path from a client that sent no cookies (an API client)."""
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and "HTTP_COOKIE" not in environ
        and INGEST_PATH.match(environ.get("PATH_INFO", "")) is not None
    )


class IngestMetricsMiddleware:
    """The django_prometheus metrics of a request, for the short stack, at a fraction of the cost.

    Records into the same metric families as PrometheusBefore/AfterMiddleware (so dashboards
    and alerts see ingestion traffic, status codes and latency by view as before), keeping the
    labelled children it has used, instead of looking labels up a dozen times per request.
    Counters that describe the request body or charset are left to the full stack."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.metrics = Metrics.get_instance()
        # (view, method, transport, status) -> the labelled children one such request counts in
        self._children: dict[tuple[str, str, str, str], tuple[tuple, object]] = {}

    def _children_for(self, view: str, method: str, transport: str, status: str):
        metrics = self.metrics
        counters = (
            metrics.requests_by_method.labels(method),
            metrics.requests_by_transport.labels(transport),
            metrics.requests_by_view_transport_method.labels(view, transport, method),
            metrics.responses_by_status.labels(status),
            metrics.responses_by_status_view_method.labels(status, view, method),
            metrics.responses_total,
        )
        latency = metrics.requests_latency_by_view_method.labels(view, method)
        if len(self._children) < 1000:  # bounded: views, methods and statuses are few
            self._children[(view, method, transport, status)] = (counters, latency)
        return counters, latency

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        metrics = self.metrics
        metrics.requests_total.inc()
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else None) or "<unnamed view>"
        method = request.method
        transport = "https" if request.is_secure() else "http"
        status = str(response.status_code)
        children = self._children.get((view, method, transport, status))
        counters, latency = children or self._children_for(view, method, transport, status)
        for counter in counters:
            counter.inc()
        latency.observe(elapsed)
        metrics.requests_latency_before.observe(elapsed)
        return response


class IngestAwareWSGIHandler(WSGIHandler):
    """Django's WSGI handler, with a second, short middleware chain for ingestion requests."""

    def __init__(self) -> None:
        super().__init__()
        self.ingest_handler = ShortStackWSGIHandler(INGEST_MIDDLEWARE)

    def __call__(self, environ, start_response):
        if is_ingest_request(environ):
            return self.ingest_handler(environ, start_response)
        return super().__call__(environ, start_response)


class ShortStackWSGIHandler(WSGIHandler):
    """A WSGI handler whose middleware chain is the given list, not settings.MIDDLEWARE.

    Synchronous middleware only (as under gunicorn); the hooks are collected as Django's
    BaseHandler.load_middleware does."""

    def __init__(self, middleware: list[str]) -> None:
        self.middleware = middleware
        self._matches: dict[tuple[object, str], ResolverMatch] = {}
        super().__init__()

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """Django's URL resolution, once per URL conf and path: the ingestion paths are a
        handful of fixed strings with no arguments, and walking the URL conf for them cost
        about a tenth of a single event's application CPU. The match is only read after."""
        # get_response has just set settings.ROOT_URLCONF for this thread; no middleware of the
        # short stack sets request.urlconf (get_urlconf() would cost two failed lookups).
        key = (getattr(request, "urlconf", None) or settings.ROOT_URLCONF, request.path_info)
        match = self._matches.get(key)
        if match is None:
            match = super().resolve_request(request)  # raises Resolver404: nothing cached
            if not match.args and not match.kwargs and len(self._matches) < 64:
                self._matches[key] = match
        request.resolver_match = match
        return match

    def load_middleware(self, is_async: bool = False) -> None:
        if is_async:
            raise NotImplementedError("the short middleware stack is for WSGI only")
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(self.middleware):
            instance = import_string(path)(handler)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler
