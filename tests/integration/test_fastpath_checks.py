"""The fences of the ingestion fast path (analytics_site/fastpath/): a middleware it does not
mirror stops start-up loudly, an unverified Django series is warned about, and switching the
fast path off silences both (event POSTs then take the full MIDDLEWARE)."""

from __future__ import annotations

import django
import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from analytics_site.fastpath import checks
from analytics_site.fastpath.handler import IngestAwareWSGIHandler, wsgi_application

UNMIRRORED = "django.middleware.gzip.GZipMiddleware"


def _check_ids() -> set[str]:
    return {message.id for message in run_checks() if message.id.startswith("fastpath.")}


def test_the_project_passes_the_fastpath_checks():
    assert _check_ids() == set()
    call_command("check")


def test_a_middleware_the_short_chain_does_not_mirror_stops_start_up(settings):
    """Added to MIDDLEWARE, it is an Error of `manage.py check` and the WSGI application
    refuses to start: event POSTs would skip it silently otherwise."""
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, UNMIRRORED]
    assert "fastpath.E001" in _check_ids()
    with pytest.raises(SystemCheckError, match="GZipMiddleware"):
        call_command("check")
    with pytest.raises(ImproperlyConfigured, match="GZipMiddleware"):
        wsgi_application()
    with pytest.raises(ImproperlyConfigured):
        IngestAwareWSGIHandler()


def test_with_the_fast_path_off_any_middleware_is_fine(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, UNMIRRORED]
    settings.INGEST_FASTPATH = False
    assert _check_ids() == set()
    assert type(wsgi_application()) is WSGIHandler


def test_every_project_middleware_is_mirrored_or_known_needless(settings):
    assert checks.middleware_unmirrored(settings.MIDDLEWARE) == []


@pytest.mark.parametrize("version", [(5, 3, 0, "final", 0), (6, 0, 0, "final", 0)])
def test_an_unverified_django_series_is_a_warning(monkeypatch, version):
    """Another feature release of Django may change what the fast path copies: warn (not fail),
    naming the installed version."""
    monkeypatch.setattr(django, "VERSION", version)
    monkeypatch.setattr(django, "get_version", lambda: ".".join(map(str, version[:3])))
    messages = [message for message in run_checks() if message.id == "fastpath.W001"]
    assert len(messages) == 1
    assert f"Django {version[0]}.{version[1]}.0 is installed" in messages[0].msg
    assert not messages[0].is_serious()


def test_a_patch_release_of_the_verified_series_is_not_warned_about(monkeypatch):
    monkeypatch.setattr(django, "VERSION", (*checks.VERIFIED_DJANGO_SERIES, 99, "final", 0))
    assert "fastpath.W001" not in _check_ids()
