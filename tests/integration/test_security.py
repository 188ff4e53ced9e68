"""Hardened defaults (issue 14): login throttling on both login pages, forwarded headers
believed only from configured proxies, HTTPS redirect and HSTS behind TLS, CSP on pages,
password reset only with mail, and error bodies that name no connection detail."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.urls import path

from analytics_site.fastpath.handler import wsgi_application
from tests.factories import event_payload
from tests.helpers import WsgiClient

PASSWORD = "right-horse-battery-9"
LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]
DSN_SECRET = "db.internal.example:5432 user=analytics password=hunter2"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        username="ops", password=PASSWORD, is_staff=True, is_superuser=True
    )


def _sign_in(client, page: str, password: str, **extra):
    return client.post(page, {"username": "ops", "password": password}, **extra)


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_right_password_is_refused_after_too_many_wrong_ones_until_the_cool_off(
    client, staff, settings, page
):
    """After AXES_FAILURE_LIMIT wrong passwords from one address even the right password is
    refused (429) for AXES_COOLOFF_TIME; after it, the right password signs in."""
    statuses = [
        _sign_in(client, page, "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form, then locked
    refused = _sign_in(client, page, PASSWORD)
    assert refused.status_code == 429
    assert b"Too many sign-in attempts" in refused.content
    assert not _signed_in(client)
    # Shortened only now: with a short cool-off from the start, a slow machine could let the
    # first failures age out of the window before the last one.
    settings.AXES_COOLOFF_TIME = dt.timedelta(seconds=1)
    time.sleep(1.2)
    assert _sign_in(client, page, PASSWORD).status_code == 302
    assert _signed_in(client)


@pytest.mark.django_db
def test_fewer_wrong_passwords_than_the_limit_do_not_lock(client, staff, settings):
    """One short of the limit, the right password still works (and resets the count)."""
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, LOGIN_PAGES[0], "wrong")
    assert _sign_in(client, LOGIN_PAGES[0], PASSWORD).status_code == 302


@pytest.mark.django_db
def test_a_lockout_on_one_login_page_covers_the_other(client, staff, settings):
    """The dashboards' login and the admin's share one counter: no second page to brute-force."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, LOGIN_PAGES[0], "wrong")
    assert _sign_in(client, LOGIN_PAGES[1], PASSWORD).status_code == 429


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_throttle_counts_clients_not_the_proxy(client, staff, settings):
    """X-Forwarded-For from a trusted proxy names the client: locking one client out does not
    lock out another client behind the same proxy; from an untrusted peer it is ignored."""
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = {"REMOTE_ADDR": "10.1.2.3"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, LOGIN_PAGES[0], "wrong", HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy)
    locked = _sign_in(
        client, LOGIN_PAGES[0], PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy
    )
    assert locked.status_code == 429
    other = _sign_in(client, LOGIN_PAGES[0], PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy)
    assert other.status_code == 302
    # A direct peer cannot pick its address with the header.
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, LOGIN_PAGES[0], "wrong", HTTP_X_FORWARDED_FOR="192.0.2.1")
    spoofed = _sign_in(client, LOGIN_PAGES[0], PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.2")
    assert spoofed.status_code == 429


def _wsgi(settings, fastpath: bool) -> WsgiClient:
    """The site's WSGI application built after the settings change (as gunicorn would)."""
    settings.INGEST_FASTPATH = fastpath
    return WsgiClient(wsgi_application(), fastpath=fastpath)


@pytest.fixture
def behind_tls(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]
    return settings


@pytest.mark.django_db
@pytest.mark.parametrize("fastpath", [True, False], ids=["fastpath", "django"])
@pytest.mark.parametrize("path", ["/accounts/login/", "/events"])
def test_x_forwarded_proto_from_an_untrusted_peer_is_ignored(behind_tls, fastpath, path):
    """A client that reaches the server directly and claims HTTPS is still redirected to
    HTTPS and gets no HSTS: the header counts only from TRUSTED_PROXIES (both request paths)."""
    client = _wsgi(behind_tls, fastpath)
    method, body = ("POST", b"{}") if path == "/events" else ("GET", b"")
    response = client.request(method, path, body, HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.django_db
@pytest.mark.parametrize("fastpath", [True, False], ids=["fastpath", "django"])
@pytest.mark.parametrize("peer", ["10.20.30.40", "fd00::1"])
def test_x_forwarded_proto_from_a_trusted_proxy_is_https_with_hsts(
    behind_tls, fastpath, peer, ingestion_key
):
    """Through a configured proxy that terminated TLS: no redirect, and HSTS on the answer."""
    client = _wsgi(behind_tls, fastpath)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingestion_key.raw_key}")
    page = client.get("/accounts/login/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https")
    assert page.status_code == 200
    assert page["Strict-Transport-Security"].startswith("max-age=31536000")
    event = client.post_json(
        "/events", event_payload(), REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https"
    )
    assert event.status_code == 201, event.content
    assert event["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_inline_code(client, staff):
    """Scripts and styles from this origin only: no 'unsafe-inline', no 'unsafe-eval'."""
    client.force_login(staff)
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"]
)
def test_password_reset_is_off_without_a_mail_backend(client, url):
    """No mail backend configured (the default): the reset pages do not exist."""
    assert client.get(url).status_code == 404
    assert client.post(url, {"email": "ops@example.com"}).status_code == 404


@pytest.mark.django_db
def test_password_reset_is_served_with_a_mail_backend(client, settings):
    settings.PASSWORD_RESET_ENABLED = True
    assert client.get("/accounts/password_reset/").status_code == 200


@pytest.mark.django_db
def test_login_pages_offer_no_password_reset_link(client):
    for page in LOGIN_PAGES:
        content = client.get(page).content.decode()
        assert "password_reset" not in content and "Forgotten your password" not in content


def _explode(request):
    raise RuntimeError(f"could not connect to {DSN_SECRET}")


urlpatterns = [path("events/explode", _explode), path("explode/", _explode)]
handler500 = "analytics_site.errors.server_error"


@pytest.mark.django_db
@pytest.mark.urls(__name__)
@pytest.mark.parametrize(("url", "json"), [("/events/explode", True), ("/explode/", False)])
def test_a_500_names_no_connection_details(client, url, json):
    """An unexpected error answers 500 with a generic body: JSON on the API, a page
    elsewhere; the exception text (a host, a DSN, a password) stays in the log."""
    client.raise_request_exception = False
    response = client.get(url)
    assert response.status_code == 500
    assert b"hunter2" not in response.content and b"db.internal" not in response.content
    if json:
        assert response.json()["error"] == "server_error"
