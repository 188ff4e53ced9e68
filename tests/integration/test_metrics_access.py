"""/metrics: open outside production; in production only with the bearer token or from an
allowed network, so scrapers work and the public does not read our counters."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db
TOKEN = "metrics-secret-123"


@pytest.fixture
def production_metrics(settings):
    settings.METRICS_OPEN = False
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return settings


def test_metrics_are_open_outside_production(client, settings):
    settings.METRICS_OPEN = True
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 403),
        ({"HTTP_AUTHORIZATION": "Bearer wrong"}, 403),
        ({"HTTP_AUTHORIZATION": f"Basic {TOKEN}"}, 403),
        ({"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, 200),
        ({"HTTP_AUTHORIZATION": f"bearer {TOKEN}"}, 200),
    ],
)
def test_production_metrics_need_the_token(client, production_metrics, headers, expected):
    response = client.get("/metrics", **headers)
    assert response.status_code == expected
    if expected == 403:
        assert response.json()["error"] == "forbidden"
        assert TOKEN not in response.content.decode()


@pytest.mark.parametrize(
    ("networks", "peer", "expected"),
    [
        (["10.0.0.0/8"], "10.1.2.3", 200),
        (["10.0.0.0/8", "192.168.1.7"], "192.168.1.7", 200),
        (["10.0.0.0/8"], "203.0.113.9", 403),
        (["fd00::/8"], "fd00::1", 200),
        (["10.0.0.0/8"], "not-an-ip", 403),
    ],
)
def test_production_metrics_from_an_allowed_network(
    client, production_metrics, networks, peer, expected
):
    production_metrics.METRICS_ALLOWED_NETWORKS = networks
    assert client.get("/metrics", REMOTE_ADDR=peer).status_code == expected


def test_a_forwarded_address_does_not_open_metrics(client, production_metrics):
    """Only the connecting peer counts: a client cannot claim an allowed address in a header."""
    production_metrics.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert response.status_code == 403


def test_without_token_or_networks_production_metrics_are_closed(client, production_metrics):
    production_metrics.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403
