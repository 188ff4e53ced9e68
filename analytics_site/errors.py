"""Error answers that tell the client what to do and nothing about our internals.

A 500 never carries an exception text (it may hold a database host, a DSN or SQL); the
traceback goes to the log only. API paths get the API's JSON error shape, pages a short page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import server_error as html_server_error

API_PREFIXES = ("/events", "/api/")


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: JSON on the API, the plain 500 page elsewhere; no exception details."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse(
            {"error": "server_error", "detail": "Internal server error; it has been logged."},
            status=500,
        )
    return html_server_error(request, template_name)


def password_reset_enabled_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 unless a mail backend is configured: a reset link that is never mailed is a dead end
    (and a way to probe which addresses have accounts)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.PASSWORD_RESET_ENABLED:
            raise Http404("Password reset is not available.")
        return view(request, *args, **kwargs)

    return wrapped


class DatabaseUnavailableMiddleware:
    """A page whose database gave up (a connect or client deadline, a dropped connection)
    answers 503 with Retry-After, like the API (events/api_errors.py), instead of a 500: the
    fault is transient and says nothing about the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        if request.path.startswith(API_PREFIXES):
            response: HttpResponse = JsonResponse(
                {"error": "service_unavailable", "detail": "The database is unavailable."},
                status=503,
            )
        else:
            response = HttpResponse(
                "The database is unavailable; retry in a few seconds.",
                status=503,
                content_type="text/plain",
            )
        response["Retry-After"] = "5"
        return response
