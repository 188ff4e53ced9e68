"""Shared fixtures: API clients, keys, and the real services (PostgreSQL, Redis, Celery worker,
Chromium). With CI=true a missing service fails the test; elsewhere it skips with a reason
that says how to enable it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from analytics_site.fastpath.handler import wsgi_application
from analytics_site.sql import is_postgres
from events import services
from tests.helpers import WsgiClient

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def service_missing(reason: str) -> None:
    """Fail in CI, skip elsewhere: CI must never pass by skipping what it did not test."""
    if IN_CI:
        pytest.fail(f"required service missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def redis_available() -> bool:
    if not settings.REDIS_URL:
        return False
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False
    return True


@pytest.fixture
def require_postgres() -> None:
    if not is_postgres():
        service_missing(
            "needs PostgreSQL: run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/analytics"
        )


@pytest.fixture
def require_redis() -> None:
    if not redis_available():
        service_missing("needs Redis: run with REDIS_URL=redis://127.0.0.1:6379/0")


@pytest.fixture
def require_chromium() -> str:
    if not (Path(CHROMIUM_PATH).exists() or shutil.which("chromium")):
        service_missing("needs Debian's chromium: apt-get install chromium")
    try:
        import playwright  # noqa: F401
    except ImportError:
        service_missing("needs playwright: pip install -r requirements/dev.txt")
    return CHROMIUM_PATH


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def ingestion_key(db) -> services.CreatedKey:
    return services.ingestion_key_create(name="test key")


@pytest.fixture
def keyed_client(ingestion_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingestion_key.raw_key}")
    return client


@pytest.fixture
def dev_mode(settings):
    """ENVIRONMENT=development behaviour: anonymous ingestion and reads."""
    settings.INGEST_ALLOW_ANONYMOUS = True
    settings.READ_ALLOW_ANONYMOUS = True
    return settings


def _worker_env(database_name: str, queue: str) -> dict[str, str]:
    env = dict(os.environ)
    db = settings.DATABASES["default"]
    if is_postgres():
        user = db.get("USER") or "postgres"
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{user}{password}@{host}:{port}/{database_name}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{database_name}"
    env["REDIS_URL"] = settings.REDIS_URL
    env["CELERY_TASK_DEFAULT_QUEUE"] = queue
    env["ENVIRONMENT"] = "testing"
    env["CELERY_TASK_ALWAYS_EAGER"] = "false"
    return env


@pytest.fixture
def celery_worker(require_redis, transactional_db, settings):
    """A real `celery worker` process on Redis, reading the test database.

    It consumes a queue unique to this test, so parallel runs and leftovers never mix. Tests
    that use it see only committed data, hence `transactional_db`.
    """
    from django.db import connection

    from analytics_site.celery import app

    # Read before the settings change: the app's configuration reads through to the settings,
    # and saving after it restored "not eager" for every later test.
    saved = {
        key: app.conf[key]
        for key in ("task_always_eager", "task_default_queue", "broker_url", "result_backend")
    }
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    app.conf.broker_url = settings.REDIS_URL
    app.conf.result_backend = settings.REDIS_URL
    database_name = connection.settings_dict["NAME"]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "analytics_site",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=_worker_env(str(database_name), queue),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_worker(app, queue, process)
        yield app
    finally:
        app.conf.update(saved)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for_worker(app, queue: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.fail(f"celery worker exited early:\n{output[-3000:]}")
        try:
            result = app.send_task("analytics_site.ping", queue=queue)
            if result.get(timeout=2) == "pong":
                return
        except Exception:  # the worker is still starting
            time.sleep(0.3)
    process.kill()
    pytest.fail("celery worker did not answer a ping within 30 s")


@pytest.fixture
def tiny_rates(require_redis, settings):
    """3 ingest and 2 read requests per hour (an hour, so no window rolls over mid-test)."""
    settings.INGEST_THROTTLE_ENABLED = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"ingest": "3/hour", "read": "2/hour"},
    }
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture(params=["fastpath", "django"])
def ingest_client(request, settings) -> WsgiClient:
    """A client of the site's WSGI application, as gunicorn calls it: once with the ingestion
    fast path (INGEST_FASTPATH on) and once with Django's handler and the full MIDDLEWARE."""
    settings.INGEST_FASTPATH = request.param == "fastpath"
    return WsgiClient(wsgi_application(), fastpath=settings.INGEST_FASTPATH)


@pytest.fixture(autouse=True, scope="session")
def _no_web_deadline_in_the_test_process():
    """Importing `analytics_site.wsgi` (the tests of the site's WSGI application do, at
    collection) installs the web processes' PostgreSQL deadline and connect hold for the whole
    interpreter. Tests under load (migrations, bulk loads) must not be cut at 5 s by it; the
    deadline's own tests install it around themselves, and the fault stack's gunicorn has it."""
    from analytics_site.db_deadline import db_deadline_uninstall

    db_deadline_uninstall()
