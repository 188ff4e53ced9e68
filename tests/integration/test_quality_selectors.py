"""The reads the Data quality page uses (a contract with the reports app): shapes, zero-filled
buckets, counts that match what ingestion did, and incident links by metric. Also that every
quality admin page renders."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse
from django.utils import timezone

from events.services import IngestSource, event_batch_ingest
from quality import selectors
from quality.models import QualityIncident
from quality.services import checks
from quality.services.defaults import defaults_load
from tests.factories import (
    EventFactory,
    QualityCheckFactory,
    QualityRuleFactory,
    event_payload,
    purchase_payload,
)

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def ingested():
    """Two hours of traffic: hour 1 all good, hour 2 with a rule error and a warning."""
    QualityRuleFactory(name="price-cap", kind="range", field="price", params={"max": 100})
    QualityRuleFactory(
        name="currency-usd",
        kind="allowed_values",
        field="currency",
        params={"values": ["USD"]},
        severity="warning",
    )
    now = timezone.now()
    earlier = now - HOUR
    event_batch_ingest(
        [
            event_payload(timestamp=(earlier - dt.timedelta(minutes=5)).isoformat())
            for _ in range(3)
        ],
        source=IngestSource(),
        received_at=earlier,
    )
    event_batch_ingest(
        [
            purchase_payload(),
            purchase_payload(currency="EUR"),
            purchase_payload(price=150, quantity=1, revenue=150),
            event_payload(country="XX"),
        ],
        source=IngestSource(),
        received_at=now,
    )
    return now


def test_validation_pass_rate_series_is_zero_filled_per_bucket(ingested):
    base = ingested.replace(minute=0, second=0, microsecond=0)
    series = selectors.validation_pass_rate_series(base - 2 * HOUR, base + HOUR)
    assert [point["bucket"] for point in series] == [base - 2 * HOUR, base - HOUR, base]
    assert set(series[0]) == {"bucket", "accepted", "rejected", "warned", "pass_rate"}
    assert series[0]["pass_rate"] is None
    assert (series[1]["accepted"], series[1]["pass_rate"]) == (3, 1.0)
    last = series[2]
    assert (last["accepted"], last["rejected"], last["warned"]) == (2, 2, 1)
    assert last["pass_rate"] == 0.5
    json.dumps(series, cls=DjangoJSONEncoder)  # JSON-friendly for json_script


def test_rules_failing_top_covers_stored_and_schema_rules(ingested):
    now = ingested
    top = selectors.rules_failing_top(now - 3 * HOUR, now + HOUR)
    names = {row["name"]: row for row in top}
    assert names["price-cap"]["rejected"] == 1 and names["price-cap"]["rule_id"] is not None
    assert names["currency-usd"]["warned"] == 1 and names["currency-usd"]["severity"] == "warning"
    assert names["country: format (schema)"]["rule_id"] is None
    assert set(top[0]) >= {"rule_id", "name", "severity", "rejected", "warned"}


def test_quarantine_summary_by_type_and_rule(ingested):
    summary = selectors.quarantine_summary()
    assert summary == {
        "quarantined": 2,
        "by_event_type": {"purchase": 1, "page_view": 1},
        "by_rule": {"price-cap": 1, "format": 1},
    }
    assert selectors.quarantine_summary(start=ingested + HOUR)["quarantined"] == 0


def test_incidents_open_and_check_runs_recent_with_metric_links():
    null_check = QualityCheckFactory(
        name="currency-null",
        kind="null_rate",
        threshold=0.0,
        params={"field": "currency", "event_types": ["purchase"], "window_minutes": 1440},
    )
    fresh = QualityCheckFactory(name="fresh", kind="freshness", threshold=15)
    EventFactory(purchase=True, currency="", timestamp=timezone.now() - dt.timedelta(hours=2))
    for check in (null_check, fresh):
        checks.check_run(check.pk)
    incidents = selectors.incidents_open()
    assert len(incidents) == 2
    assert set(incidents[0]) >= {
        "id",
        "title",
        "source",
        "severity",
        "status",
        "opened_at",
        "last_seen_at",
        "occurrences",
        "admin_url",
        "fields",
        "event_types",
    }
    revenue = {i["title"] for i in selectors.incidents_open(metric="revenue")}
    devices = {i["title"] for i in selectors.incidents_open(metric="devices")}
    assert revenue == {i["title"] for i in incidents}  # currency on purchases + freshness
    assert devices == {"Check fresh failing (freshness)"}  # freshness touches every chart
    runs = selectors.check_runs_recent(limit=5)
    assert {run["check"] for run in runs} == {"currency-null", "fresh"}
    assert set(runs[0]) >= {
        "check",
        "kind",
        "outcome",
        "metric_value",
        "threshold",
        "ran_at",
        "duration_ms",
    }


def test_every_quality_admin_page_renders(client):
    defaults_load()
    checks.checks_run()
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw-admin-1")
    client.force_login(user)
    for model in (
        "qualityrule",
        "qualitycheck",
        "checkrun",
        "qualityincident",
        "replayjob",
        "rulecounter",
    ):
        response = client.get(reverse(f"admin:quality_{model}_changelist"))
        assert response.status_code == 200, model
    response = client.get(reverse("admin:quality_qualityrule_add"))
    assert response.status_code == 200 and "revenue_matches" in response.content.decode()
    rule = QualityIncident.objects.first()
    if rule is not None:
        assert (
            client.get(reverse("admin:quality_qualityincident_change", args=[rule.pk])).status_code
            == 200
        )
    response = client.get(reverse("admin:events_rejectedevent_changelist"), {"field": "country"})
    assert response.status_code == 200


def test_the_quarantine_admin_has_the_quality_filters_and_replay(client):
    """The events app's RejectedEvent admin lists the filters and the replay action that the
    quality admin adds through `rejected_event_admin_extend` (no re-registration)."""
    QualityRuleFactory(name="price-cap")  # the failed-rule filter offers stored rule names
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw-admin-1")
    client.force_login(user)
    response = client.get(reverse("admin:events_rejectedevent_changelist"))
    assert response.status_code == 200
    titles = {spec.title for spec in response.context["cl"].filter_specs}
    assert {"failed rule", "failed field", "status"} <= titles
    actions = {name for name, _ in response.context["action_form"].fields["action"].choices}
    assert "replay_selected" in actions
