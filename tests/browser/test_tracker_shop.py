"""tracker.js on a real page: a test shop served from its own origin (so CORS is real) with the
README's snippet, driven in Chromium from a product view to a purchase; the events arrive
through a public key, and the funnel on the dashboard equals the raw-SQL reference once the
rollups are folded. Also: a failed send is retried, and nothing is sent under Global Privacy
Control (or Do-Not-Track) unless the page says to ignore them."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from django.utils import timezone

from analytics_site.sql import rollup_safety_lag
from events import cors, services
from events.models import Event, RejectedEvent
from reports.filters import filters_from_query
from reports.services.rollups import rollups_advance
from tests.browser.conftest import ROOT, sign_in
from tests.browser.shop_server import shop_serving, tracker_snippet
from tests.dashboard_reference import ref_funnel_counts, ref_sessions

pytestmark = [pytest.mark.browser, pytest.mark.postgres]
SCREENSHOT = ROOT / "docs" / "screenshots" / "tracker-shop-funnel.png"
SHOP_TYPES = [
    "page_view",  # index
    "search",
    "page_view",  # product
    "product_view",
    "page_view",  # the reviews tab, a history.pushState navigation
    "add_to_cart",
    "page_view",  # cart
    "checkout_start",
    "page_view",  # checkout
    "purchase",
    "newsletter_signup",
    "page_view",  # thanks
]


@pytest.fixture
def shop(live_server, transactional_db, require_postgres):
    """The shop, with a public key listed for its origin and the tracker pointed at us."""
    with shop_serving() as running:
        key = services.ingestion_key_create(
            name="test shop", kind="public", allowed_origins=[running.origin]
        )
        cors.public_origins_forget()
        running.key = key.raw_key
        running.snippet = tracker_snippet(live_server.url, key.raw_key, flush_interval="300")
        yield running


def _wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    rejected = list(RejectedEvent.objects.values_list("reasons", flat=True)[:3])
    pytest.fail(f"timed out waiting for {what}; quarantined: {rejected}")


def _shop_page(browser, init_script: str | None = None):
    context = browser.new_context(viewport={"width": 1100, "height": 700})
    context.set_default_timeout(10_000)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


def _steps_on_page(page) -> list[int]:
    rows = page.locator("section.card:has(h2:text-is('Steps')) tbody tr")
    return [int(rows.nth(i).locator("td").nth(1).inner_text().replace(",", "")) for i in range(5)]


def test_the_shop_funnel_from_the_tracker_equals_raw_sql(browser, shop, open_page, analyst):
    context, page, errors = _shop_page(browser)
    page.goto(shop.url("index.html"))
    page.click("button[type=submit]")  # search
    page.click("#product-1")
    page.wait_for_selector("#name:text-is('Headphones')")
    page.click("#reviews")
    page.wait_for_url("**tab=reviews")
    page.click("#add")
    page.wait_for_url("**/cart.html")
    page.click("#checkout")
    page.wait_for_url("**/checkout.html")
    page.click("#pay")
    page.wait_for_url("**/thanks.html")
    page.goto("about:blank")  # page hide: the thanks page view leaves by sendBeacon
    context.close()
    _wait_for(lambda: Event.objects.count() >= len(SHOP_TYPES), "the shop's events")
    assert errors == []
    assert RejectedEvent.objects.count() == 0

    events = list(Event.objects.order_by("timestamp", "id"))
    assert sorted(e.event_type for e in events) == sorted(SHOP_TYPES)
    assert len({e.anonymous_id for e in events}) == 1  # one visitor, kept in localStorage
    assert len({e.session_id for e in events}) == 1  # derived by the server: one visit
    purchase = next(e for e in events if e.event_type == "purchase")
    assert (purchase.product_id, purchase.quantity, str(purchase.revenue)) == ("sku_1", 2, "119.80")
    assert purchase.currency == "EUR"
    assert next(e for e in events if e.event_type == "search").search_query == "headphones"

    rollups_advance(now=timezone.now() + rollup_safety_lag() + dt.timedelta(seconds=1))
    dashboard = open_page()
    sign_in(dashboard, analyst)
    dashboard.goto("/funnel/?preset=24h")
    filters = filters_from_query({"preset": "24h"})
    expected = ref_funnel_counts(ref_sessions(filters))
    assert expected == [1, 1, 1, 1, 1]
    assert _steps_on_page(dashboard.page) == expected
    dashboard.assert_clean()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    dashboard.page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert Path(SCREENSHOT).stat().st_size > 10_000


def test_a_failed_send_is_retried_until_it_is_stored(browser, shop, live_server):
    context, page, errors = _shop_page(browser)
    attempts: list[str] = []

    def fail_first(route) -> None:
        attempts.append(route.request.method)
        if len(attempts) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(f"{live_server.url}/events/batch?*", fail_first)
    page.goto(shop.url("index.html"))
    _wait_for(lambda: Event.objects.filter(event_type="page_view").exists(), "the retried send")
    assert len(attempts) >= 2
    assert Event.objects.count() == 1  # resent once it went through, stored once
    context.close()
    assert errors == [] or all("ERR_CONNECTION_RESET" in error for error in errors)


@pytest.mark.parametrize(
    "signal",
    [
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
    ],
    ids=["gpc", "dnt"],
)
def test_nothing_is_sent_under_a_privacy_signal_unless_told_to(browser, shop, live_server, signal):
    context, page, _ = _shop_page(browser, init_script=signal)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/events" in r.url else None)
    page.goto(shop.url("index.html"))
    page.click("button[type=submit]")
    page.click("#product-1")
    page.click("#add")
    page.wait_for_url("**/cart.html")
    assert page.evaluate("window.tracker.disabled") is True
    assert page.evaluate("Object.keys(localStorage)") == []  # no id kept either
    page.goto("about:blank")
    time.sleep(1.0)  # what a page hide would send, had anything been queued
    assert sent == []
    assert Event.objects.count() == 0

    shop.snippet = tracker_snippet(live_server.url, shop.key, respect_privacy="false")
    page.goto(shop.url("index.html"))
    page.goto("about:blank")
    _wait_for(lambda: Event.objects.count() == 1, "the page view sent when told to")
    context.close()


def test_memory_storage_keeps_no_id_in_the_browser(browser, shop, live_server):
    shop.snippet = tracker_snippet(live_server.url, shop.key, storage="memory")
    context, page, errors = _shop_page(browser)
    page.goto(shop.url("index.html"))
    page.evaluate("window.tracker.identify('customer_7'); window.tracker.track('signup', {})")
    page.evaluate("window.tracker.flush()")
    _wait_for(lambda: Event.objects.count() == 2, "the page view and the signup")
    assert page.evaluate("Object.keys(localStorage).length + document.cookie.length") == 0
    context.close()
    assert errors == []
    assert Event.objects.get(event_type="signup").user_id == "customer_7"
