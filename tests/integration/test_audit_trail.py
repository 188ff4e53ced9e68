"""The audit trail (django-simple-history): admin changes to rules, checks, keys and users'
roles, and replays, are recorded with who, when and what changed, shown in admin, and a rule or
check can be reverted to an earlier version from its history page."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group

from events import services as event_services
from events.models import IngestionKey
from quality.models import QualityCheck, QualityRule, ReplayJob
from quality.services import replay
from tests.factories import QualityCheckFactory, QualityRuleFactory, RejectedEventFactory
from tests.helpers import user_with_role

pytestmark = pytest.mark.django_db


def _rule_form(rule: QualityRule, **changes) -> dict:
    data = {
        "name": rule.name,
        "description": rule.description,
        "severity": rule.severity,
        "kind": rule.kind,
        "field": rule.field,
        "params": json.dumps(rule.params),
        "event_types": rule.event_types,
        "alert_rate_threshold": rule.alert_rate_threshold,
        **({"enabled": "on"} if rule.enabled else {}),
    }
    return {**data, **changes}


def _check_form(check: QualityCheck, **changes) -> dict:
    data = {
        "name": check.name,
        "description": check.description,
        "kind": check.kind,
        "params": json.dumps(check.params),
        "threshold": check.threshold,
        "interval_minutes": check.interval_minutes,
        "severity": check.severity,
        "webhook_url": check.webhook_url,
        **({"enabled": "on"} if check.enabled else {}),
    }
    return {**data, **changes}


def _form_errors(response) -> object:
    return response.context and response.context["adminform"].form.errors


@pytest.fixture
def analyst_client(client):
    analyst = user_with_role("Analyst", username="ana")
    client.force_login(analyst)
    client.user = analyst
    return client


def test_a_rule_changed_in_admin_is_recorded_with_its_user_and_diff_and_can_be_reverted(
    analyst_client,
):
    rule = QualityRuleFactory(description="before", severity="error")
    url = f"/admin/quality/qualityrule/{rule.pk}/change/"
    response = analyst_client.post(url, _rule_form(rule, description="after", severity="warning"))
    assert response.status_code == 302, response.context["adminform"].form.errors

    latest, previous = rule.history.order_by("-history_id")[:2]
    assert latest.history_user == analyst_client.user
    assert latest.history_type == "~"
    changes = {c.field: (c.old, c.new) for c in latest.diff_against(previous).changes}
    assert changes["description"] == ("before", "after")
    assert changes["severity"] == ("error", "warning")

    history_page = analyst_client.get(f"/admin/quality/qualityrule/{rule.pk}/history/")
    assert history_page.status_code == 200
    assert "ana" in history_page.content.decode()

    revert_url = f"/admin/quality/qualityrule/{rule.pk}/history/{previous.history_id}/"
    assert analyst_client.get(revert_url).status_code == 200
    reverted = analyst_client.post(revert_url, _rule_form(previous.instance))
    assert reverted.status_code == 302
    rule.refresh_from_db()
    assert (rule.description, rule.severity) == ("before", "error")
    assert rule.history.latest().history_user == analyst_client.user


def test_bulk_enable_and_disable_are_recorded_per_rule(analyst_client):
    rules = [QualityRuleFactory(), QualityRuleFactory()]
    response = analyst_client.post(
        "/admin/quality/qualityrule/",
        {"action": "rules_disable", "_selected_action": [rule.pk for rule in rules]},
    )
    assert response.status_code == 302
    for rule in rules:
        latest = rule.history.latest()
        assert (latest.enabled, latest.history_user) == (False, analyst_client.user)


def test_a_check_changed_in_admin_is_recorded_and_can_be_reverted(analyst_client):
    check = QualityCheckFactory(threshold=15)
    url = f"/admin/quality/qualitycheck/{check.pk}/change/"
    assert analyst_client.post(url, _check_form(check, threshold=30)).status_code == 302
    latest, previous = check.history.order_by("-history_id")[:2]
    assert latest.history_user == analyst_client.user
    changes = {c.field: (c.old, c.new) for c in latest.diff_against(previous).changes}
    assert changes == {"threshold": (15, 30)}
    revert_url = f"/admin/quality/qualitycheck/{check.pk}/history/{previous.history_id}/"
    assert analyst_client.post(revert_url, _check_form(previous.instance)).status_code == 302
    check.refresh_from_db()
    assert check.threshold == 15


def test_revoking_a_key_in_admin_is_recorded_with_the_admin(client):
    admin = user_with_role("Admin", username="boss")
    client.force_login(admin)
    created = event_services.ingestion_key_create(name="shop", scopes=["write"])
    response = client.post(
        f"/admin/events/ingestionkey/{created.key.pk}/change/",
        {"name": "shop", "scopes": ["write"], "expires_at_0": "", "expires_at_1": ""},
    )
    assert response.status_code == 302, _form_errors(response)
    latest = IngestionKey.history.filter(id=created.key.pk).latest()
    assert (latest.is_active, latest.history_user) == (False, admin)
    assert client.get(f"/admin/events/ingestionkey/{created.key.pk}/history/").status_code == 200


def test_giving_a_user_a_role_in_admin_is_recorded(client, django_user_model):
    admin = user_with_role("Admin", username="boss")
    client.force_login(admin)
    person = user_with_role(None, username="newcomer")
    analyst = Group.objects.get(name="Analyst")
    response = client.post(
        f"/admin/auth/user/{person.pk}/change/",
        {
            "username": "newcomer",
            "is_active": "on",
            "groups": [analyst.pk],
            "date_joined_0": person.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": person.date_joined.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, _form_errors(response)
    latest = django_user_model.history.filter(id=person.pk).latest()
    assert latest.history_user == admin
    assert [row.group_id for row in latest.groups.all()] == [analyst.pk]
    assert client.get(f"/admin/auth/user/{person.pk}/history/").status_code == 200


def test_a_replay_is_recorded_with_who_started_it(analyst_client):
    rejected = RejectedEventFactory()
    job = replay.replay_job_create([rejected.pk], user=analyst_client.user)
    first = ReplayJob.history.filter(id=job.pk).earliest()
    assert (first.history_type, first.history_user, first.total) == ("+", analyst_client.user, 1)
    assert analyst_client.get(f"/admin/quality/replayjob/{job.pk}/history/").status_code == 200
