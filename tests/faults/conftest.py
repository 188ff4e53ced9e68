"""Fixtures of the fault suite: a TCP proxy it controls and a Redis server of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.db import connections

from tests.faults.proxy import FaultProxy
from tests.own_redis import OwnRedis


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def postgres_proxy(require_postgres) -> Iterator[FaultProxy]:
    """A proxy in front of the test database; new connections of any thread go through it."""
    db = connections.settings["default"]
    proxy = FaultProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    saved = (db.get("HOST"), db.get("PORT"))
    db["HOST"], db["PORT"] = "127.0.0.1", proxy.port
    try:
        yield proxy
    finally:
        db["HOST"], db["PORT"] = saved
        proxy.close()


@pytest.fixture
def redis_proxy(require_redis, settings) -> Iterator[FaultProxy]:
    """A proxy in front of the shared Redis; REDIS_URL points at it for this test."""
    url = redis.connection.parse_url(settings.REDIS_URL)
    proxy = FaultProxy((url.get("host", "127.0.0.1"), int(url.get("port", 6379))))
    settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/{url.get('db', 0)}"
    try:
        yield proxy
    finally:
        proxy.close()
