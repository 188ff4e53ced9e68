"""The health endpoints answer within a second whatever a dependency does, and say only
"ok" or "down" (no host, port or driver error), through a real TCP proxy that black-holes."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

pytestmark = [
    pytest.mark.faults,
    pytest.mark.django_db,
    pytest.mark.usefixtures("require_postgres"),
]

ANSWER_WITHIN_SECONDS = 1.0  # probes are cut at HEALTH_TIMEOUT_SECONDS (0.7 s)


def _get(path: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = Client().get(path)
    return response.status_code, response.json(), time.monotonic() - started


def _assert_no_connection_details(body: dict, port: int) -> None:
    text = json.dumps(body)
    for leak in (str(port), "127.0.0.1", "localhost", "connection", "psycopg", "Error"):
        assert leak not in text, f"{leak!r} leaked into {text}"


def test_all_three_are_ok_when_everything_answers(require_redis):
    for path in ("/health/live", "/health/ready", "/health"):
        status, body, _ = _get(path)
        assert (status, body["status"]) == (200, "ok"), path
    assert _get("/health")[1]["components"]["broker"] == {"status": "ok", "mode": "redis"}


def test_database_black_hole_ready_and_health_503_within_a_second(require_redis, postgres_proxy):
    """PostgreSQL accepts TCP and never answers: ready and health say 503 "down" in time, live
    stays 200, and no body names the host, the port or the driver's error."""
    postgres_proxy.mode = "blackhole"
    status, body, seconds = _get("/health/ready")
    assert (status, body["status"]) == (503, "down")
    assert seconds < ANSWER_WITHIN_SECONDS
    _assert_no_connection_details(body, postgres_proxy.port)

    status, body, seconds = _get("/health")
    assert (status, body["status"]) == (503, "down")
    assert body["components"]["database"] == {"status": "down"}
    assert body["components"]["broker"]["status"] == "ok"
    assert seconds < ANSWER_WITHIN_SECONDS
    _assert_no_connection_details(body, postgres_proxy.port)

    status, body, seconds = _get("/health/live")
    assert (status, body) == (200, {"status": "ok"})
    assert seconds < ANSWER_WITHIN_SECONDS


def test_database_back_from_the_black_hole_is_ready_again(require_redis, postgres_proxy):
    """No manual step: once the proxy forwards again, ready is 200 on the next probe."""
    postgres_proxy.mode = "blackhole"
    assert _get("/health/ready")[0] == 503
    postgres_proxy.mode = "forward"
    deadline = time.monotonic() + 10
    while _get("/health/ready")[0] != 200:
        assert time.monotonic() < deadline, "ready did not recover within 10 s"
        time.sleep(0.5)


def test_redis_black_hole_health_is_200_degraded_and_ready_200(redis_proxy):
    """Redis accepts TCP and never answers: web still serves (ingestion needs only the
    database), so /health is 200 "degraded" and /health/ready 200, both in time."""
    redis_proxy.mode = "blackhole"
    status, body, seconds = _get("/health")
    assert (status, body["status"]) == (200, "degraded")
    assert body["components"]["broker"] == {"status": "down", "mode": "redis"}
    assert body["components"]["database"] == {"status": "ok"}
    assert seconds < ANSWER_WITHIN_SECONDS
    _assert_no_connection_details(body, redis_proxy.port)
    status, body, seconds = _get("/health/ready")
    assert (status, body["status"]) == (200, "ok")
    assert seconds < ANSWER_WITHIN_SECONDS


def test_both_black_holed_health_still_answers_within_a_second(postgres_proxy, redis_proxy):
    """The probes run at once under one deadline, so two black holes cost no more than one."""
    postgres_proxy.mode = redis_proxy.mode = "blackhole"
    status, body, seconds = _get("/health")
    assert (status, body["status"]) == (503, "down")
    assert body["components"] == {
        "database": {"status": "down"},
        "broker": {"status": "down", "mode": "redis"},
    }
    assert seconds < ANSWER_WITHIN_SECONDS


def test_redis_killed_health_is_200_degraded(redis_proxy):
    """Redis gone (connections refused): the same 200 "degraded"."""
    redis_proxy.close()
    status, body, _ = _get("/health")
    assert (status, body["status"]) == (200, "degraded")
    assert body["components"]["broker"]["status"] == "down"
