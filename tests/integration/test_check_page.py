"""The page per dataset check (/quality/checks/<id>/): its metric over time against its
threshold as a chart spec, recent runs with their failing-row samples, its incidents; linked
from the Data quality page; htmx gets the partial; an unknown check is a 404."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from quality.models import QualityIncident
from quality.services import checks
from tests.factories import EventFactory, QualityCheckFactory
from tests.helpers import user_with_role

pytestmark = pytest.mark.django_db
NOW = timezone.now()


@pytest.fixture
def viewer_client(client):
    client.force_login(user_with_role("Viewer"))
    return client


@pytest.fixture
def failing_check():
    """A duplicate check that passes once, then fails twice with two repeats sampled."""
    check = QualityCheckFactory(name="dupes", kind="duplicate_rate", threshold=0.2)
    EventFactory(timestamp=NOW - dt.timedelta(minutes=15), session_id="s", product_id="p")
    checks.check_run(check.pk, now=NOW - dt.timedelta(minutes=10))
    repeats = [
        EventFactory(timestamp=NOW - dt.timedelta(minutes=15), session_id="s", product_id="p")
        for _ in range(2)
    ]
    checks.check_run(check.pk, now=NOW - dt.timedelta(minutes=5))
    checks.check_run(check.pk, now=NOW)
    return check, repeats


def test_check_page_shows_metric_runs_samples_and_incidents(viewer_client, failing_check):
    """The chart spec holds one point per run in time order with the threshold line; the runs
    table links each sampled event; the check's incident is listed."""
    check, repeats = failing_check
    response = viewer_client.get(reverse("reports:check_detail", args=[check.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    spec = json.loads(
        re.search(
            r'<script id="chart-check-metric" type="application/json">(.*?)</script>', html
        ).group(1)
    )
    metric, threshold = spec["datasets"]
    assert metric["data"] == [0.0, pytest.approx(2 / 3), pytest.approx(2 / 3)]
    assert threshold == {"label": "Threshold", "data": [0.2] * 3, "role": "target"}
    assert spec["format"] == "percent"
    for event in repeats:
        assert f"?q={event.event_id}" in html
    incident = QualityIncident.objects.get(quality_check=check)
    assert reverse("admin:quality_qualityincident_change", args=[incident.pk]) in html
    assert html.count('class="badge fail"') >= 2


def test_quality_page_links_each_check_and_its_samples(viewer_client, failing_check):
    """The Data quality page's check-runs table has a real href to the check page, and a link
    to the run's samples for a failed run."""
    check, _ = failing_check
    html = viewer_client.get(reverse("reports:quality")).content.decode()
    assert f'href="/quality/checks/{check.pk}/"' in html
    run = check.runs.order_by("-ran_at").first()
    assert f'href="{reverse("admin:quality_checkrun_change", args=[run.pk])}"' in html


def test_check_page_htmx_partial_and_unknown_check(viewer_client, failing_check):
    check, _ = failing_check
    url = reverse("reports:check_detail", args=[check.pk])
    partial = viewer_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "chart-check-metric" in partial and "<html" not in partial
    assert viewer_client.get(reverse("reports:check_detail", args=[999999])).status_code == 404
