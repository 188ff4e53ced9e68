"""The page per dataset check in a real Chromium: reached from the Data quality page by its
link, the metric chart drawn against the threshold, samples open, readable on a phone."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from quality.services import checks
from tests.browser.conftest import LAPTOP, PHONE, sign_in
from tests.factories import EventFactory, QualityCheckFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def duplicate_check(transactional_db):
    """Twelve hourly runs of a duplicate check: clean, then repeats planted in the last hours."""
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    check = QualityCheckFactory(
        name="duplicates-hourly",
        kind="duplicate_rate",
        threshold=0.05,
        description="Same action sent twice under new event ids.",
    )
    for hours_ago in range(12, 0, -1):
        at = now - dt.timedelta(hours=hours_ago)
        for n in range(40):
            EventFactory(timestamp=at - dt.timedelta(minutes=10), session_id=f"s{hours_ago}-{n}")
        for n in range(max(0, 5 - hours_ago) * 3):
            EventFactory(timestamp=at - dt.timedelta(minutes=10), session_id=f"s{hours_ago}-{n}")
        checks.check_run(check.pk, now=at)
    return check


def test_check_page_from_the_quality_page_on_laptop_and_phone(open_page, analyst, duplicate_check):
    """The checks table links the check page; its chart draws one point per run and the
    threshold line; a failed run's samples open; no sideways scroll on a phone."""
    for size_name, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        session = open_page(viewport)
        sign_in(session, analyst)
        session.goto("/quality/")
        session.page.click(f"a.check-link:text-is('{duplicate_check.name}')")
        session.page.wait_for_url(f"**/quality/checks/{duplicate_check.pk}/")
        session.page.wait_for_function(
            "Chart.getChart(document.querySelector('[data-chart=chart-check-metric]'))"
        )
        points = session.page.evaluate(
            "Chart.getChart(document.querySelector('[data-chart=chart-check-metric]'))"
            ".data.datasets.map(d => d.data.length)"
        )
        assert points == [12, 12]
        session.page.locator("#runs details summary").first.click()
        assert session.page.locator("#runs ul.samples a").first.is_visible()
        width = session.page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"check page scrolls sideways at {size_name} size"
        session.screenshot(f"check-{size_name}")
        session.assert_clean()
