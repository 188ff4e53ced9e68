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

import contextlib
import re
import threading
import time
import weakref
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.cache.backends.base import BaseCache
from django.core.handlers.base import reset_urlconf
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.db import close_old_connections, connections, reset_queries
from django.http import HttpRequest, HttpResponseBase
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import ResolverMatch, set_script_prefix
from django.utils.log import log_response
from django.utils.module_loading import import_string
from django_prometheus.middleware import Metrics

# /events, /events/batch and the same under /api/v1/, with or without a trailing slash
# (the URL conf in events/urls.py accepts both).
INGEST_PATH = re.compile(r"^/(?:api/v1/)?events(?:/batch)?/?$")

INGEST_MIDDLEWARE = [
    "analytics_site.handlers.IngestMetricsMiddleware",
    "analytics_site.handlers.IngestHeadersMiddleware",
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


class IngestHeadersMiddleware:
    """Django's SecurityMiddleware, CommonMiddleware and XFrameOptionsMiddleware, in that order,
    as one layer: the same checks and the same response headers, in the same order.

    Requests: the HTTPS redirect (SECURE_SSL_REDIRECT), then the disallowed user agents, the
    host check against ALLOWED_HOSTS (400 for a bad Host) and the PREPEND_WWW redirect, by
    Django's own methods. Responses: X-Frame-Options (unless set or exempt), Content-Length,
    then HSTS on secure requests, X-Content-Type-Options, Referrer-Policy and
    Cross-Origin-Opener-Policy unless already set. An exception in the request checks becomes
    its error response here and gets only the security headers, as when each middleware was
    its own layer. The header values depend on settings only; they are worked out once and
    again when a test changes a setting. Three layers cost ~1,000 bytecodes per event, most of
    it in per-response settings lookups and header setdefaults."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self._settings_read()
        signals.setting_changed.connect(self._setting_changed, weak=True)

    def _setting_changed(self, **kwargs) -> None:
        self._settings_read()

    def _settings_read(self) -> None:
        self.security = SecurityMiddleware(self.get_response)  # reads its settings once too
        self.common = CommonMiddleware(self.get_response)
        security = self.security
        self.hsts = None
        if security.sts_seconds:
            self.hsts = f"max-age={security.sts_seconds}"
            if security.sts_include_subdomains:
                self.hsts += "; includeSubDomains"
            if security.sts_preload:
                self.hsts += "; preload"
        policy = security.referrer_policy
        if policy and isinstance(policy, str):
            policy = ",".join(value.strip() for value in policy.split(","))
        elif policy:
            policy = ",".join(policy)
        # (header, value) that SecurityMiddleware sets unless the response has it, in its order
        self.security_defaults = tuple(
            (name, value)
            for name, value in (
                ("X-Content-Type-Options", "nosniff" if security.content_type_nosniff else None),
                ("Referrer-Policy", policy),
                ("Cross-Origin-Opener-Policy", security.cross_origin_opener_policy),
            )
            if value
        )
        self.xframe_value = getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.security.process_request(request) if self.security.redirect else None
        if response is None:
            try:
                response = self.common.process_request(request)
            except Exception as exc:  # as convert_exception_to_response does
                response = response_for_exception(request, exc)
            else:
                if response is None:
                    response = self._inner_response(request)
                else:  # the PREPEND_WWW redirect: its own Content-Length, no X-Frame-Options
                    response = self.common.process_response(request, response)
        headers = response.headers
        if self.hsts and request.is_secure() and "Strict-Transport-Security" not in headers:
            headers["Strict-Transport-Security"] = self.hsts
        for name, value in self.security_defaults:
            if name not in headers:
                headers[name] = value
        return response

    def _inner_response(self, request: HttpRequest) -> HttpResponseBase:
        """The view's response with XFrameOptionsMiddleware's and CommonMiddleware's headers."""
        response = self.get_response(request)
        headers = response.headers
        if "X-Frame-Options" not in headers and not getattr(
            response, "xframe_options_exempt", False
        ):
            headers["X-Frame-Options"] = self.xframe_value
        if response.status_code == 404 or response.streaming:
            return self.common.process_response(request, response)  # slash redirect, streaming
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(response.content))
        return response


class RequestSignals:
    """What Django's own receivers of request_started and request_finished do, without the
    signals, for the short stack (see ShortStackWSGIHandler).

    Valid while both signals have exactly Django's receivers (`default_receivers()` compares
    the receiver lists with those it last checked, pointer by pointer, and checks them again
    when they changed), and every configured cache's close() is BaseCache's no-op
    (close_caches then does nothing)."""

    def __init__(self) -> None:
        self.started_receivers = list(signals.request_started.receivers)
        self.finished_receivers = list(signals.request_finished.receivers)
        self._thread = threading.local()
        self._django_receivers = self._receivers_are_djangos()
        self._caches_close_nothing = self._caches_close_is_a_noop()
        signals.setting_changed.connect(self._setting_changed, weak=True)

    def _receivers_are_djangos(self) -> bool:
        def functions(receivers) -> list:
            return [
                ref() if isinstance(ref, weakref.ReferenceType) else ref for _, ref, _ in receivers
            ]

        return sorted(map(id, functions(self.started_receivers))) == sorted(
            map(id, [reset_queries, close_old_connections])
        ) and sorted(map(id, functions(self.finished_receivers))) == sorted(
            map(id, [close_old_connections, close_caches, reset_urlconf])
        )

    @staticmethod
    def _caches_close_is_a_noop() -> bool:
        return all(
            import_string(cache["BACKEND"]).close is BaseCache.close
            for cache in settings.CACHES.values()
        )

    def _setting_changed(self, setting: str, **kwargs) -> None:
        if setting == "CACHES":
            self._caches_close_nothing = self._caches_close_is_a_noop()
        elif setting == "DATABASES":
            self._thread = threading.local()

    def default_receivers(self) -> bool:
        started, finished = signals.request_started.receivers, signals.request_finished.receivers
        if started != self.started_receivers or finished != self.finished_receivers:
            # connected or disconnected since (a receiver put back comes last): look again
            self.started_receivers, self.finished_receivers = list(started), list(finished)
            self._django_receivers = self._receivers_are_djangos()
        return self._django_receivers and self._caches_close_nothing

    def _connections(self) -> list:
        """This thread's initialized connections. Django keeps one connection object per
        alias and thread for the thread's life (closing it keeps the object), so once every
        alias has one they are kept here instead of being looked up in asgiref's locals."""
        kept = self._thread.__dict__.get("connections")
        if kept is not None:
            return kept
        initialized = connections.all(initialized_only=True)
        if len(initialized) == len(connections.settings):
            self._thread.connections = initialized
        return initialized

    def request_started(self) -> None:
        """reset_queries() and close_old_connections()."""
        for connection in self._connections():
            if connection.queries_log:
                connection.queries_log.clear()
            connection.close_if_unusable_or_obsolete()

    def response_close(self, response: HttpResponseBase) -> None:
        """HttpResponseBase.close(), and close_old_connections() for request_finished
        (close_caches has nothing to close; reset_urlconf nothing to reset)."""
        for closer in response._resource_closers:
            with contextlib.suppress(Exception):  # as HttpResponseBase.close
                closer()
        response._resource_closers.clear()
        response.closed = True
        response.__dict__.pop("close", None)  # this method, bound to the response: no cycle
        for connection in self._connections():
            connection.close_if_unusable_or_obsolete()


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
    BaseHandler.load_middleware does.

    Django's request signals: while request_started and request_finished have exactly the
    receivers Django itself connects (reset_queries and close_old_connections; then
    close_old_connections, close_caches and reset_urlconf), this handler does their work
    directly instead of sending the signals (`RequestSignals`): the same reset of query logs
    and the same close_if_unusable_or_obsolete() of this thread's connections, before the
    request and when the response is closed. Signal dispatch and the connection look-ups
    through asgiref's locals cost about a tenth of a single event's bytecodes (each look-up
    raises and catches an exception). As soon as the receivers differ (another app's receiver,
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
