"""Fixtures of the fault suite: a TCP proxy it controls and a Redis server of its own."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from django.db import connections

from tests.conftest import service_missing
from tests.faults.proxy import FaultProxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server process this test may kill and start again on the same port."""

    def __init__(self) -> None:
        if not shutil.which("redis-server"):
            service_missing("needs redis-server on PATH: apt-get install redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


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
