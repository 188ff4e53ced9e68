"""Ingestion validates through the validator registered in `events.validation`: the quality
app's EventValidator (schema layer, then the stored rules) once the apps are loaded, and the
schema layer alone when nothing else is registered."""

from __future__ import annotations

import pytest

from events.services import IngestSource, event_batch_ingest
from events.validation import SchemaValidator, validator_get, validator_register
from quality.models import RuleCounter
from quality.validators import EventValidator
from tests.factories import QualityRuleFactory, event_payload, purchase_payload


@pytest.fixture
def schema_only():
    validator_register(SchemaValidator)
    yield
    validator_register(EventValidator)


@pytest.fixture
def price_cap():
    return QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )


def test_the_quality_app_registers_its_validator_at_start_up():
    assert isinstance(validator_get(), EventValidator)


@pytest.mark.django_db
def test_ingestion_applies_the_stored_rules_through_the_registered_validator(price_cap):
    """The rule refuses the event, and the quality counters record it."""
    payload = purchase_payload(price=150, quantity=1, revenue=150)
    outcome = event_batch_ingest([payload], source=IngestSource())[0]
    assert outcome.status == "rejected" and outcome.errors[0].rule == "price-cap"
    assert RuleCounter.objects.get(rule_id=price_cap.pk).rejected == 1


@pytest.mark.django_db
def test_without_a_registered_validator_ingestion_checks_the_schema_only(schema_only, price_cap):
    """No rule applies and nothing is counted, but the schema layer still refuses bad events."""
    payloads = [purchase_payload(price=150, quantity=1, revenue=150), event_payload(country="XX")]
    priced, unknown_country = event_batch_ingest(payloads, source=IngestSource())
    assert priced.status == "accepted"
    assert unknown_country.status == "rejected" and unknown_country.errors[0].field == "country"
    assert not RuleCounter.objects.exists()
