"""The dashboards in a real browser (Debian's chromium through playwright): sign in, every page
draws its charts at laptop and phone size, filters and the live page update in place through
htmx, CSV downloads work, and nothing logs an error or leaves this machine."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.browser.conftest import LAPTOP, PHONE, sign_in
from tests.factories import EventFactory, RejectedEventFactory

pytestmark = pytest.mark.browser

PAGES = {
    "overview": "/",
    "funnel": "/funnel/",
    "products": "/products/",
    "audience": "/audience/",
    "live": "/live/",
    "quality": "/quality/",
}
CHARTS_DRAWN = """() => {
  const canvases = [...document.querySelectorAll('canvas[data-chart]')];
  return {
    canvases: canvases.length,
    drawn: canvases.filter((c) => window.Chart && Chart.getChart(c)).length,
    instances: window.Chart ? Object.keys(Chart.instances).length : -1,
  };
}"""


@pytest.fixture
def shop_events(transactional_db):
    """Sessions over the last five days: desktop sessions in the US buy, mobile sessions in
    Germany browse; a few events sit in quarantine."""
    now = timezone.now()
    for index in range(12):
        mobile = index % 3 == 0
        start = now - dt.timedelta(hours=4 + index * 9)
        common = {
            "session_id": f"s{index}",
            "user_id": f"user_{index % 7}",
            "device_type": "mobile" if mobile else "desktop",
            "country": "DE" if mobile else "US",
        }
        product = {"product_id": f"sku_{index % 4}", "category": ["audio", "books"][index % 2]}
        steps = ["page_view", "product_view"]
        if not mobile:
            steps += ["add_to_cart", "checkout_start", "purchase"]
        for offset, step in enumerate(steps):
            extra = product if step in ("product_view", "add_to_cart", "purchase") else {}
            if step == "purchase":
                extra = {
                    **extra,
                    "order_id": f"order_{index}",
                    "price": Decimal("15.00"),
                    "quantity": 2,
                    "revenue": Decimal("30.00"),
                    "currency": "USD",
                }
            EventFactory(
                event_type=step, timestamp=start + dt.timedelta(minutes=offset), **common, **extra
            )
    RejectedEventFactory.create_batch(3)


def _assert_charts_drawn(session, page_name: str) -> dict:
    session.page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart]')]"
        ".every((c) => window.Chart && Chart.getChart(c))"
    )
    state = session.page.evaluate(CHARTS_DRAWN)
    assert state["canvases"] >= 1, page_name
    assert state["drawn"] == state["canvases"], (page_name, state)
    assert state["instances"] == state["canvases"], (page_name, state)  # nothing leaked
    return state


def test_every_page_draws_its_charts_on_laptop_and_phone(open_page, analyst, shop_events):
    """Sign in through the form, open every page at both sizes: charts drawn, quality note
    shown, no console error, no request leaves localhost (works offline)."""
    for size_name, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        session = open_page(viewport)
        sign_in(session, analyst)
        for name, path in PAGES.items():
            session.goto(path)
            _assert_charts_drawn(session, name)
            assert session.page.locator("nav.mainnav [aria-current=page]").inner_text() in {
                "Overview",
                "Funnel",
                "Products",
                "Audience",
                "Live",
                "Data quality",
            }
            if name != "quality":
                assert session.page.locator(".qnote").first.is_visible()
            width = session.page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{name} scrolls sideways at {size_name} size"
            session.screenshot(f"{name}-{size_name}")
        assert session.request_count > 0
        session.assert_clean()


def test_filters_update_charts_in_place_and_keep_the_url(shop_events, signed_in):
    """Preset, device and split changes swap the charts through htmx: no full reload (a
    marker on window survives), the URL carries the filters, old charts are destroyed."""
    page = signed_in.page
    _assert_charts_drawn(signed_in, "overview")
    labels_before = page.evaluate(
        "Chart.getChart(document.querySelector('[data-chart=chart-events]')).data.labels.length"
    )
    assert labels_before == 7
    page.evaluate("window.__marker = 1")

    page.click(".chips a:text-is('30d')")
    page.wait_for_url("**/?preset=30d")
    page.wait_for_function(
        "() => "
        "Chart.getChart(document.querySelector('[data-chart=chart-events]'))"
        "?.data.labels.length === 30"
    )
    assert page.evaluate("window.__marker") == 1
    _assert_charts_drawn(signed_in, "overview after preset")

    events_all = page.locator("[data-kpi=events] .kpi-value").inner_text()
    page.select_option("select[name=device]", "mobile")
    page.wait_for_url("**/?preset=30d&device=mobile")
    page.wait_for_function(
        f"() => document.querySelector('[data-kpi=events] .kpi-value').innerText !== '{events_all}'"
    )
    assert page.locator("[data-kpi=events] .kpi-value").inner_text() == "8"
    assert page.evaluate("window.__marker") == 1
    _assert_charts_drawn(signed_in, "overview after device")

    page.click("nav.mainnav a:text-is('Funnel')")  # the navigation keeps the filters
    page.wait_for_url("**/funnel/?preset=30d&device=mobile")
    page.evaluate("window.__marker = 2")
    page.select_option("select[name=device]", "")
    page.wait_for_url("**/funnel/?preset=30d")
    page.click(".chips.split a:text-is('By device')")
    page.wait_for_url("**/funnel/?preset=30d&split=device")
    page.wait_for_function(
        "() => "
        "Chart.getChart(document.querySelector('[data-chart=chart-funnel]'))"
        "?.data.datasets.length === 2"
    )
    assert page.evaluate("window.__marker") == 2
    assert page.locator("nav.mainnav a:text-is('Products')").get_attribute("href") == (
        "/products/?preset=30d"
    )
    page.go_back()  # htmx restores the unsplit funnel from the server
    page.wait_for_url("**/funnel/?preset=30d")
    page.wait_for_selector(".chips.split a.active:text-is('All sessions')")
    page.wait_for_function(
        "() => "
        "Chart.getChart(document.querySelector('[data-chart=chart-funnel]'))"
        "?.data.datasets.length === 1"
    )
    _assert_charts_drawn(signed_in, "funnel after back")
    signed_in.assert_clean()


def test_custom_date_range_applies(shop_events, signed_in):
    """Picking dates and pressing Apply shows exactly that range, in place."""
    page = signed_in.page
    page.evaluate("window.__marker = 1")
    today = timezone.now().date()
    start = (today - dt.timedelta(days=2)).isoformat()
    page.fill("input[name=start]", start)
    page.fill("input[name=end]", today.isoformat())
    page.click("button:text-is('Apply dates')")
    page.wait_for_url(f"**/?preset=custom&start={start}&end={today.isoformat()}")
    page.wait_for_function(
        "() => "
        "Chart.getChart(document.querySelector('[data-chart=chart-events]'))"
        "?.data.labels.length === 3"
    )
    assert page.evaluate("window.__marker") == 1
    assert page.locator(".chip.active").inner_text() == "custom"
    signed_in.assert_clean()


def test_live_page_refreshes_by_polling(shop_events, signed_in, settings):
    """A new event shows up on the live page by itself, without reloading it."""
    settings.REPORTS_LIVE_POLL_SECONDS = 1
    page = signed_in.page
    signed_in.goto("/live/")
    _assert_charts_drawn(signed_in, "live")
    page.evaluate("window.__marker = 1")
    assert page.locator("#newest-events").get_by_text("user_live_new").count() == 0

    EventFactory(user_id="user_live_new", timestamp=timezone.now(), event_type="search")

    page.locator("#newest-events").get_by_text("user_live_new").wait_for(timeout=8_000)
    assert page.evaluate("window.__marker") == 1
    page.wait_for_function(
        "() => "
        "Chart.getChart(document.querySelector('[data-chart=chart-per-minute]'))"
        "?.data.datasets[0].data.reduce((a, b) => a + b, 0) >= 1"
    )
    _assert_charts_drawn(signed_in, "live after poll")
    signed_in.assert_clean()


def test_csv_download(shop_events, signed_in, tmp_path):
    """The CSV link downloads a file named after the table with the page's numbers."""
    page = signed_in.page
    signed_in.goto("/funnel/?preset=30d")
    with page.expect_download() as download_info:
        page.locator("a.csv").first.click()
    download = download_info.value
    assert download.suggested_filename.startswith("funnel-steps-")
    assert download.suggested_filename.endswith(".csv")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(row["step"], row["sessions"]) for row in rows if row["split"] == "all"] == [
        ("page_view", "12"),
        ("product_view", "12"),
        ("add_to_cart", "8"),
        ("checkout_start", "8"),
        ("purchase", "8"),
    ]
    signed_in.assert_clean()


def test_filters_work_without_javascript(open_page, analyst, shop_events):
    """With JavaScript off, the filter form still submits as a plain GET."""
    session = open_page(javascript=False)
    sign_in(session, analyst)
    session.page.select_option("select[name=device]", "mobile")
    session.page.click("button:text-is('Apply filters')")
    session.page.wait_for_url("**/?preset=7d*device=mobile*")
    assert session.page.locator("[data-kpi=events] .kpi-value").inner_text() == "8"
    session.page.click(".chips a:text-is('30d')")
    session.page.wait_for_url("**/?preset=30d&device=mobile")
    assert session.errors == []
