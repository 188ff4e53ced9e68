"""The WSGI handlers: Django's, with a second, short middleware chain for event POSTs from API
clients (see the package docstring for what it mirrors and when it is used)."""

from __future__ import annotations

import re
from functools import partial

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.http import HttpRequest
from django.urls import ResolverMatch, set_script_prefix
from django.utils.log import log_response
from django.utils.module_loading import import_string

from analytics_site.fastpath.checks import middleware_unmirrored
from analytics_site.fastpath.signals import RequestSignals

# /events, /events/batch and the same under /api/v1/, with or without a trailing slash
# (the URL conf in events/urls.py accepts both); and the tracker protocols' batch endpoints
# (trackers/urls.py: Segment's /v1/batch, PostHog's /batch/, Snowplow's tp2), whose batches
# are the same ingestion at the same rates.
INGEST_PATH = re.compile(
    r"^/(?:(?:api/v1/)?events(?:/batch)?/?|v1/batch/?|batch/|com\.snowplowanalytics\.snowplow/tp2)$"
)

INGEST_MIDDLEWARE = [
    "analytics_site.fastpath.middleware.IngestMetricsMiddleware",
    "analytics_site.proxy.TrustedProxyMiddleware",
    "analytics_site.fastpath.middleware.IngestHeadersMiddleware",
]


def is_ingest_request(environ: dict) -> bool:
    """A POST to an ingestion path from a client that sent no cookies (an API client)."""
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and "HTTP_COOKIE" not in environ
        and INGEST_PATH.match(environ.get("PATH_INFO", "")) is not None
    )


class IngestAwareWSGIHandler(WSGIHandler):
    """Django's WSGI handler, with a second, short middleware chain for ingestion requests.

    Refuses to start (ImproperlyConfigured) when settings.MIDDLEWARE holds a middleware that
    the short chain neither mirrors nor knows to be needless for API POSTs: event POSTs would
    skip it silently otherwise."""

    def __init__(self) -> None:
        unmirrored = middleware_unmirrored(settings.MIDDLEWARE)
        if unmirrored:
            raise ImproperlyConfigured(
                f"MIDDLEWARE has {', '.join(unmirrored)}, which the ingestion fast path does not "
                "mirror: add it to analytics_site.fastpath (checks.MIRRORED or checks.NOT_NEEDED) "
                "or set INGEST_FASTPATH=false."
            )
        super().__init__()
        self.ingest_handler = ShortStackWSGIHandler(INGEST_MIDDLEWARE)

    def __call__(self, environ, start_response):
        if is_ingest_request(environ):
            return self.ingest_handler(environ, start_response)
        return super().__call__(environ, start_response)


class ShortStackWSGIHandler(WSGIHandler):
    """A WSGI handler whose middleware chain is the given list, not settings.MIDDLEWARE.

    Synchronous middleware only (as under gunicorn); the hooks are collected as Django's
    BaseHandler.load_middleware does.

    Django's request signals: while request_started and request_finished have exactly the
    receivers Django itself connects (reset_queries and close_old_connections; then
    close_old_connections, close_caches and reset_urlconf), this handler does their work
    directly instead of sending the signals (`RequestSignals`): the same reset of query logs
    and the same close_if_unusable_or_obsolete() of this thread's connections, before the
    request and when the response is closed (this skips signal dispatch and the connection
    look-ups through asgiref's locals). As soon as the receivers differ (another app's receiver,
    or a test client that disconnects close_old_connections), the signals are sent as usual."""

    def __init__(self, middleware: list[str]) -> None:
        self.middleware = middleware
        self._matches: dict[tuple[object, str], ResolverMatch] = {}
        super().__init__()
        self.signals = RequestSignals()

    def __call__(self, environ, start_response):
        signals = self.signals
        if not signals.default_receivers():
            return super().__call__(environ, start_response)
        set_script_prefix(get_script_name(environ))
        signals.request_started()
        request = self.request_class(environ)
        # BaseHandler.get_response without set_urlconf(ROOT_URLCONF): this thread's URL conf
        # is unset, which resolves and reverses with ROOT_URLCONF just the same, and so needs
        # no reset_urlconf when the request finishes.
        response = self._middleware_chain(request)
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        response._handler_class = self.__class__
        response.close = partial(signals.response_close, response)
        status = f"{response.status_code} {response.reason_phrase}"
        start_response(
            status,
            [
                *response.items(),
                *(("Set-Cookie", c.output(header="")) for c in response.cookies.values()),
            ],
        )
        if getattr(response, "file_to_stream", None) is not None and environ.get(
            "wsgi.file_wrapper"
        ):  # as WSGIHandler.__call__ (no ingestion answer is a file)
            response.file_to_stream.close = response.close
            response = environ["wsgi.file_wrapper"](response.file_to_stream, response.block_size)
        return response

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """Django's URL resolution, once per URL conf and path: the ingestion paths are a
        handful of fixed strings with no arguments, so walking the URL conf again for each
        request finds the same match. The match is only read after."""
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


def wsgi_application() -> WSGIHandler:
    """The site's WSGI application: with the fast path unless settings.INGEST_FASTPATH is off,
    then Django's own handler and the full MIDDLEWARE for every request."""
    if settings.INGEST_FASTPATH:
        return IngestAwareWSGIHandler()
    return WSGIHandler()
