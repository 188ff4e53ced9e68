"""The short stack's one header middleware (IngestHeadersMiddleware) against the three Django
middlewares it stands for (SecurityMiddleware, CommonMiddleware, XFrameOptionsMiddleware, in
that order): the same status, the same headers in the same order and the same body, for
answers, errors raised in the view or in the request checks, and the settings that change
them."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpResponse, HttpResponseNotFound, StreamingHttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory

from analytics_site.fastpath.middleware import IngestHeadersMiddleware


def _json(request):
    return HttpResponse(b'{"status":"accepted"}', status=201, content_type="application/json")


def _with_frame_options(request):
    response = _json(request)
    response["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _frame_exempt(request):
    response = _json(request)
    response.xframe_options_exempt = True
    return response


def _with_referrer_policy(request):
    response = _json(request)
    response["Referrer-Policy"] = "no-referrer"
    return response


def _not_found(request):
    return HttpResponseNotFound(b"{}")


def _streaming(request):
    return StreamingHttpResponse(iter([b"a", b"b"]))


def _forbidden(request):
    raise PermissionDenied("no")


VIEWS = [_json, _with_frame_options, _frame_exempt, _with_referrer_policy, _not_found]
VIEWS += [_streaming, _forbidden]


def _django_chain(view):
    handler = convert_exception_to_response(view)
    for middleware in (XFrameOptionsMiddleware, CommonMiddleware, SecurityMiddleware):
        handler = convert_exception_to_response(middleware(handler))
    return handler


def _ours(view):
    return convert_exception_to_response(
        IngestHeadersMiddleware(convert_exception_to_response(view))
    )


def _answer(handler, request) -> tuple[int, list[tuple[str, str]], bytes]:
    response = handler(request)
    content = b"".join(response) if response.streaming else response.content
    return response.status_code, list(response.items()), content


def _request(secure: bool = False, **extra):
    factory = RequestFactory()
    return factory.post("/events", b"{}", content_type="application/json", secure=secure, **extra)


@pytest.mark.parametrize("view", VIEWS, ids=lambda view: view.__name__)
@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_the_same_answer_as_djangos_three_middlewares(view, secure):
    ours = _answer(_ours(view), _request(secure))
    assert ours == _answer(_django_chain(view), _request(secure))
    assert ("X-Content-Type-Options", "nosniff") in ours[1]


@pytest.mark.parametrize(
    "overrides",
    [
        {"SECURE_HSTS_SECONDS": 3600},
        {"SECURE_HSTS_SECONDS": 60, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True},
        {"SECURE_HSTS_SECONDS": 60, "SECURE_HSTS_PRELOAD": True},
        {"SECURE_SSL_REDIRECT": True},
        {"SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin-allow-popups"},
        {"SECURE_REFERRER_POLICY": "no-referrer, strict-origin"},
        {"SECURE_REFERRER_POLICY": ["origin", "same-origin"]},
        {"SECURE_REFERRER_POLICY": None, "SECURE_CONTENT_TYPE_NOSNIFF": False},
        {"X_FRAME_OPTIONS": "sameorigin"},
        {"ALLOWED_HOSTS": ["shop.example"]},
        {"PREPEND_WWW": True},
    ],
    ids=lambda overrides: ",".join(overrides),
)
@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_the_same_answer_under_other_settings(settings, overrides, secure):
    """Settings changed after the middleware was made apply to it (as to Django's, made after)."""
    ours = IngestHeadersMiddleware(convert_exception_to_response(_json))
    for name, value in overrides.items():
        setattr(settings, name, value)
    expected = _answer(_django_chain(_json), _request(secure))
    assert _answer(convert_exception_to_response(ours), _request(secure)) == expected


def test_a_disallowed_user_agent_gets_the_same_403(settings):
    import re

    settings.DISALLOWED_USER_AGENTS = [re.compile("badbot")]
    request = {"HTTP_USER_AGENT": "badbot/1.0"}
    expected = _answer(_django_chain(_json), _request(**request))
    assert expected[0] == 403
    assert _answer(_ours(_json), _request(**request)) == expected


def test_a_bad_host_gets_the_same_400():
    expected = _answer(_django_chain(_json), _request(HTTP_HOST="evil.example"))
    assert expected[0] == 400
    assert _answer(_ours(_json), _request(HTTP_HOST="evil.example")) == expected
