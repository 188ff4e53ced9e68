"""factory-boy factories for stored rows and plain payload dicts for the API."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from events.models import Event, RejectedEvent
from events.services import IngestSource, event_batch_ingest


def event_payload(**overrides: Any) -> dict[str, Any]:
    """A valid wire-format event (the README's example shape) with a fresh event_id."""
    payload: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": (timezone.now() - dt.timedelta(minutes=1)).isoformat(),
        "user_id": "user_12345",
        "session_id": "session_67890",
        "page_url": "/products/laptop",
        "device_type": "desktop",
        "country": "US",
    }
    payload.update(overrides)
    return payload


def purchase_payload(**overrides: Any) -> dict[str, Any]:
    values = {
        "event_type": "purchase",
        "order_id": f"order_{uuid.uuid4().hex[:8]}",
        "revenue": 199.98,
        "price": 99.99,
        "quantity": 2,
        "currency": "USD",
        "product_id": "sku_1",
    }
    values.update(overrides)
    return event_payload(**values)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    event_id = factory.LazyFunction(uuid.uuid4)
    event_type = "page_view"
    timestamp = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=5))
    client_timestamp = factory.SelfAttribute("timestamp")
    received_at = factory.LazyFunction(timezone.now)
    user_id = factory.Sequence(lambda n: f"user_{n % 50}")
    session_id = factory.Sequence(lambda n: f"session_{n % 100}")
    device_type = "desktop"
    country = "US"
    page_url = "/"
    price = None
    quantity = None
    revenue = None

    class Params:
        purchase = factory.Trait(
            event_type="purchase",
            order_id=factory.Sequence(lambda n: f"order_{n}"),
            product_id="sku_1",
            price=Decimal("10.00"),
            quantity=2,
            revenue=Decimal("20.00"),
            currency="USD",
        )


class RejectedEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RejectedEvent

    event_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    event_type = "page_view"
    raw_payload = '{"event_type": "page_view"}'
    dedupe_key = factory.LazyAttribute(lambda row: f"id:{row.event_id or uuid.uuid4()}")
    reasons = factory.LazyFunction(
        lambda: [{"field": "country", "rule": "required", "message": "Field required"}]
    )
    received_at = factory.LazyFunction(timezone.now)


class QualityRuleFactory(factory.django.DjangoModelFactory):
    """A stored quality rule (severity error, all event types unless given)."""

    class Meta:
        model = "quality.QualityRule"

    name = factory.Sequence(lambda n: f"rule-{n}")
    kind = "required"
    field = "category"
    params = factory.LazyFunction(dict)
    event_types = factory.LazyFunction(list)
    severity = "error"
    enabled = True


class QualityCheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "quality.QualityCheck"

    name = factory.Sequence(lambda n: f"check-{n}")
    kind = "freshness"
    params = factory.LazyFunction(dict)
    threshold = 15
    interval_minutes = 1


def protocol_batch_store(
    users: list[str], *, received_at: dt.datetime | None = None, protocol: str = "segment"
) -> list[int]:
    """One translated batch, an event per user with its original message ({"messageId": "m-<n>-
    <user>", "userId": user, ...}), stored as ingestion stores one: ids of the events, in order."""
    received_at = received_at or timezone.now()
    payloads, originals = [], []
    for n, user in enumerate(users):
        payloads.append(event_payload(user_id=user, timestamp=received_at.isoformat()))
        originals.append({"messageId": f"m-{n}-{user}", "userId": user, "note": "a\nb"})
    outcomes = event_batch_ingest(
        payloads,
        source=IngestSource(protocol=protocol),
        received_at=received_at,
        originals=originals,
    )
    assert all(outcome.id is not None for outcome in outcomes), outcomes
    return [outcome.id for outcome in outcomes]
