"""Shared by the tests of public (browser) keys, ADR 0018: a shop origin and another one, the
origins cache emptied around each test, and a public key limited to given origins."""

from __future__ import annotations

import pytest

from events import cors, services

SHOP = "https://shop.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture(autouse=True)
def fresh_public_origins():
    """Applies to every test of a module that imports it: keys' origins are cached per process."""
    cors.public_origins_forget()
    yield
    cors.public_origins_forget()


def public_key_create(*origins: str) -> str:
    return services.ingestion_key_create(
        name="shop site", kind="public", allowed_origins=list(origins)
    ).raw_key
