"""The short chain's two middlewares: each stands for Django middlewares of settings.MIDDLEWARE
(which ones is listed in `analytics_site.fastpath.checks.MIRRORED`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.core import signals
from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest, HttpResponseBase
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django_prometheus.middleware import Metrics


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
    again when a test changes a setting (three layers would look settings up per response)."""

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
