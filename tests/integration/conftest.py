"""Fixtures of the page tests (test_pages.py, test_page_csv.py): a logged-in analyst and a
small shop whose every dashboard number is known by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import EventFactory, RejectedEventFactory
from tests.helpers import user_with_role


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(user_with_role("Viewer", username="analyst", password="pw-analyst-123"))
    return client


def _event(session: str, user: str, event_type: str, minutes_ago: int, **fields):
    return EventFactory(
        session_id=session,
        user_id=user,
        event_type=event_type,
        timestamp=timezone.now() - dt.timedelta(minutes=minutes_ago),
        **fields,
    )


@pytest.fixture
def seeded(db):
    """Three sessions in the last hours: one buys (desktop, US), one views a product (mobile,
    DE), one only lands (mobile, US); plus two events held in quarantine.

    8 events, 3 sessions, 3 users, 1 purchase of 20.00: conversion 1/3.
    """
    laptop = {"product_id": "sku_1", "category": "laptops"}
    _event("s1", "user_a", "page_view", 50)
    _event("s1", "user_a", "product_view", 49, **laptop)
    _event("s1", "user_a", "add_to_cart", 48, **laptop)
    _event("s1", "user_a", "checkout_start", 47)
    _event(
        "s1",
        "user_a",
        "purchase",
        46,
        order_id="order_1",
        price=Decimal("10.00"),
        quantity=2,
        revenue=Decimal("20.00"),
        currency="USD",
        **laptop,
    )
    mobile_de = {"device_type": "mobile", "country": "DE"}
    _event("s2", "user_b", "page_view", 30, **mobile_de)
    _event("s2", "user_b", "product_view", 29, product_id="sku_2", category="books", **mobile_de)
    _event("s3", "user_c", "page_view", 10, device_type="mobile", country="US")
    RejectedEventFactory.create_batch(2)
