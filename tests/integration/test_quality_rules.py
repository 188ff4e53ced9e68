"""Stored rules at ingestion: edited in admin, effective on the next batch, reported by name,
cheap (a fixed number of queries per batch), and tried on stored events before enabling."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from events.models import Event, RejectedEvent
from quality import rulesets
from quality.models import QualityRule, RuleCounter, RuleSetVersion
from quality.services.defaults import defaults_load
from quality.validators import EventValidator
from tests.factories import EventFactory, QualityRuleFactory, event_payload, purchase_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("analyst", "a@example.com", "pw-analyst-1")
    client.force_login(user)
    return client


def rule_form(**overrides) -> dict:
    data = {
        "name": "price-cap",
        "description": "",
        "enabled": "on",
        "severity": "error",
        "kind": "range",
        "field": "price",
        "params": '{"max": 100}',
        "event_types": ["purchase"],
        "alert_rate_threshold": "0.05",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def ingest(api_client, *payloads) -> list[dict]:
    response = api_client.post("/events/batch", {"events": list(payloads)}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def expensive_purchase() -> dict:
    return purchase_payload(price=150, quantity=1, revenue=150)


def test_rule_edited_through_admin_changes_the_next_ingestion(dev_mode, api_client, admin_client):
    """Create a rule in admin: the next batch is judged by it (named in the response); edit it
    in admin: the batch after that follows the new parameters; disable it: no effect."""
    response = admin_client.post(reverse("admin:quality_qualityrule_add"), rule_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = QualityRule.objects.get(name="price-cap")
    assert rule.updated_by.username == "analyst"

    (result,) = ingest(api_client, expensive_purchase())
    assert result["status"] == "rejected"
    assert result["errors"] == [
        {
            "field": "price",
            "rule": "price-cap",
            "message": "must be at most 100",
            "rule_id": rule.pk,
        }
    ]
    quarantined = RejectedEvent.objects.get(pk=result["rejected_id"])
    assert quarantined.rule_ids == [rule.pk]

    change_url = reverse("admin:quality_qualityrule_change", args=[rule.pk])
    response = admin_client.post(change_url, rule_form(params='{"max": 1000}'))
    assert response.status_code == 302
    (result,) = ingest(api_client, expensive_purchase())
    assert result["status"] == "accepted"

    response = admin_client.post(change_url, rule_form(params='{"max": 10}', enabled=None))
    assert response.status_code == 302
    (result,) = ingest(api_client, expensive_purchase())
    assert result["status"] == "accepted"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"kind": "regex", "field": "product_id", "params": '{"pattern": "(unclosed"}'},
            "Invalid regular expression",
        ),
        ({"params": '{"min": 10, "max": 1}'}, "must not be greater than"),
        ({"field": "colour"}, "Unknown field"),
        ({"kind": "max_age", "params": '{"days": 3}'}, "needs a time field"),
    ],
)
def test_bad_rule_parameters_are_form_errors_in_admin(admin_client, overrides, message):
    """A bad regex or min > max is shown on the form and nothing is saved."""
    response = admin_client.post(reverse("admin:quality_qualityrule_add"), rule_form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not QualityRule.objects.exists()


def test_warning_rule_accepts_the_event_and_records_warnings_and_counters(dev_mode, api_client):
    """Warnings are stored on the event and counted per rule, so a warning rate is reported."""
    rule = QualityRuleFactory(
        name="currency-known",
        kind="allowed_values",
        field="currency",
        params={"values": ["USD"]},
        severity="warning",
    )
    ok, warned = ingest(api_client, purchase_payload(), purchase_payload(currency="EUR"))
    assert ok["status"] == warned["status"] == "accepted"
    assert warned["warnings"][0]["rule"] == "currency-known"
    stored = Event.objects.get(event_id=warned["event_id"])
    assert stored.warnings[0]["rule_id"] == rule.pk
    counter = RuleCounter.objects.get(rule_key=f"rule:{rule.pk}")
    assert (counter.evaluated, counter.rejected, counter.warned) == (2, 0, 1)


def test_schema_failures_are_counted_for_the_top_failing_list(dev_mode, api_client):
    ingest(api_client, event_payload(country="XX"), event_payload(country="XX"), event_payload())
    counter = RuleCounter.objects.get(rule_key="schema:country:format")
    assert counter.rejected == 2 and counter.name == "country: format (schema)"


def test_batch_rules_cost_a_fixed_number_of_queries_per_batch(require_postgres):
    """session_exists and order-id-unique-per-day look stored events up once per batch,
    however many events the batch has."""
    defaults_load()
    EventFactory.create_batch(3, session_id="known")

    def batch(size: int) -> list[dict]:
        events = []
        for i in range(size):
            events.append(event_payload(event_type="checkout_start", session_id=f"s{i % 7}"))
            events.append(purchase_payload(order_id=f"o{i}", session_id="known"))
        return events

    validator = EventValidator()
    validator.validate_batch(batch(2))  # warm the process cache
    with CaptureQueriesContext(connection) as small:
        validator.validate_batch(batch(5))
    with CaptureQueriesContext(connection) as large:
        results = validator.validate_batch(batch(200))
    assert len(large.captured_queries) == len(small.captured_queries) <= 3
    refused = [r for r in results if r.errors]
    assert len(refused) == 7  # the first checkout of each of the 7 unknown sessions
    assert {e.rule for r in refused for e in r.errors} == {"checkout-needs-known-session"}


def test_unique_order_id_per_day_against_stored_events(dev_mode, api_client):
    defaults_load()
    (first,) = ingest(api_client, purchase_payload(order_id="order-77"))
    assert first["status"] == "accepted"
    (again,) = ingest(api_client, purchase_payload(order_id="order-77"))
    assert again["status"] == "rejected"
    assert again["errors"][0]["rule"] == "order-id-unique-per-day"


def test_a_rule_change_made_elsewhere_reaches_this_process_within_the_poll_interval(settings):
    """Another process's edit (version bumped in the database, no local signal) is picked up
    once the poll interval has passed, without a restart; before that, no query is made."""
    settings.QUALITY_RULES_CACHE_SECONDS = 0.3
    rule = QualityRuleFactory(kind="range", field="price", params={"max": 100})
    RuleSetVersion.objects.create(pk=1, version=1)
    rulesets.ruleset_invalidate()
    assert [r.spec.params for r in rulesets.ruleset_current().rules] == [{"max": 100}]

    QualityRule.objects.filter(pk=rule.pk).update(params={"max": 5})  # as another process would
    RuleSetVersion.objects.filter(pk=1).update(version=F("version") + 1)
    with CaptureQueriesContext(connection) as cached:
        still_old = rulesets.ruleset_current()
    assert [r.spec.params for r in still_old.rules] == [{"max": 100}]
    assert cached.captured_queries == []
    time.sleep(0.35)
    assert [r.spec.params for r in rulesets.ruleset_current().rules] == [{"max": 5}]


def test_try_rule_in_admin_reports_how_many_stored_events_it_would_reject(admin_client):
    """Trying a disabled rule on the newest stored events: "would reject 3 of 10"."""
    EventFactory.create_batch(7, category="shoes")
    EventFactory.create_batch(3, category="")
    rule = QualityRuleFactory(name="needs-category", field="category", enabled=False)
    response = admin_client.get(reverse("admin:quality_qualityrule_try", args=[rule.pk]) + "?n=100")
    assert response.status_code == 200
    assert "would reject 3 of 10" in response.content.decode()


def test_try_batch_rule_judges_each_event_against_earlier_ones(admin_client):
    """unique_per_day tried on stored data: only the later reuse of an order id counts."""
    now = timezone.now()
    EventFactory(purchase=True, order_id="dup", timestamp=now.replace(hour=1))
    EventFactory(purchase=True, order_id="dup", timestamp=now.replace(hour=2))
    EventFactory(purchase=True, order_id="single", timestamp=now.replace(hour=2))
    rule = QualityRuleFactory(
        name="orders-unique", kind="unique_per_day", field="order_id", event_types=["purchase"]
    )
    response = admin_client.get(reverse("admin:quality_qualityrule_try", args=[rule.pk]))
    assert "would reject 1 of 3" in response.content.decode()


def test_load_default_rules_is_idempotent():
    first = defaults_load()
    second = defaults_load()
    assert first.rules_created >= 15 and first.checks_created >= 7
    assert second.rules_created == second.checks_created == 0
    assert QualityRule.objects.count() == first.rules_created


def test_counters_are_buffered_per_process_and_flushed_in_one_write(dev_mode, api_client, settings):
    """Between flushes, single-event requests cost no counter write; the flush sums them."""
    from quality.services.rules import validation_stats_flush

    settings.QUALITY_COUNTERS_FLUSH_SECONDS = 3600
    validation_stats_flush()  # start from an empty buffer
    rule = QualityRuleFactory(name="price-cap", kind="range", field="price", params={"max": 100})
    for _ in range(3):
        api_client.post("/events", expensive_purchase(), format="json")
    assert not RuleCounter.objects.filter(rule_key=f"rule:{rule.pk}").exists()
    assert validation_stats_flush() >= 1
    counter = RuleCounter.objects.get(rule_key=f"rule:{rule.pk}")
    assert (counter.evaluated, counter.rejected) == (3, 3)


def test_try_session_rule_sees_stored_events_older_than_the_sample(admin_client):
    """A checkout whose session began before the sampled events is not a false alarm."""
    now = timezone.now()
    EventFactory(session_id="known", timestamp=now.replace(microsecond=0) - dt.timedelta(hours=2),
                 received_at=now - dt.timedelta(hours=2))  # fmt: skip
    EventFactory(event_type="checkout_start", session_id="known", received_at=now)
    EventFactory(event_type="checkout_start", session_id="orphan", received_at=now)
    rule = QualityRuleFactory(
        name="checkout-session", kind="session_exists", field="session_id",
        event_types=["checkout_start"], enabled=False,
    )  # fmt: skip
    url = reverse("admin:quality_qualityrule_try", args=[rule.pk])
    assert "would reject 1 of 2" in admin_client.get(url + "?n=2").content.decode()


def test_load_default_rules_reset_restores_every_field():
    defaults_load()
    rule = QualityRule.objects.get(name="checkout-needs-known-session")
    QualityRule.objects.filter(pk=rule.pk).update(severity="warning", event_types=[], enabled=False)
    defaults_load(reset=True)
    rule.refresh_from_db()
    assert (rule.severity, rule.event_types, rule.enabled) == ("error", ["checkout_start"], True)
