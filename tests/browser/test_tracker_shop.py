"""tracker.js on a real page: a test shop served from its own origin (so CORS is real) with the
README's snippet, driven in Chromium from a product view to a purchase; the events arrive
through a public key, and the funnel on the dashboard equals the raw-SQL reference once the
rollups are folded. A visitor who signs in mid-visit (identify) is one person on the
dashboard. Also: a failed send is retried, and nothing is sent under Global Privacy Control
(or Do-Not-Track) unless the page says to ignore them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from analytics_site.sql import rollup_safety_lag
from events.models import Event, Person, PersonLink, RejectedEvent
from reports.filters import filters_from_query
from reports.services.rollups import rollups_advance
from tests.browser.conftest import ROOT, sign_in
from tests.browser.shop_pages import shop_page, wait_for
from tests.browser.shop_server import free_port, tracker_snippet
from tests.dashboard_reference import ref_funnel_counts, ref_sessions, ref_totals
from tests.faults.tcp_proxy import ProxyProcess

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


def _steps_on_page(page) -> list[int]:
    rows = page.locator("section.card:has(h2:text-is('Steps')) tbody tr")
    return [int(rows.nth(i).locator("td").nth(1).inner_text().replace(",", "")) for i in range(5)]


def _buyer(page) -> None:
    """Search, view a product (and its reviews tab), add it, check out, pay."""
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


def _cart_leaver(page) -> None:
    """View a product (its events sent by fetch before going on), add it, leave."""
    with page.expect_response(lambda response: "/events/batch" in response.url):
        page.click("#product-2")
    page.wait_for_selector("#name:text-is('Novel')")
    page.click("#add")
    page.wait_for_url("**/cart.html")


def test_the_shop_funnel_from_the_tracker_equals_raw_sql(
    browser, _chromium, shop, open_page, analyst
):
    """Three visitors, each in its own browser context: one buys on a laptop, one leaves a
    cart on a phone, one only looks at the home page."""
    phone = _chromium["playwright"].devices["iPhone 13"]  # its User-Agent: a derived "mobile"
    # (walk, device, events it sends): the cart leaver 3 page views, product, add; the looker 1
    visits = [(_buyer, None, len(SHOP_TYPES)), (_cart_leaver, phone, 5), (lambda p: None, None, 1)]
    expected_count = 0
    for walk, device, count in visits:
        context, page, errors = shop_page(browser, device=device)
        page.goto(shop.url("index.html"))
        walk(page)
        page.goto("about:blank")  # page hide: what is left leaves by sendBeacon
        expected_count += count
        # Closing the context would cancel a beacon still in flight (a browser quitting).
        wait_for(lambda n=expected_count: Event.objects.count() >= n, "the visit", page=page)
        context.close()
        assert errors == []
    assert Event.objects.count() == expected_count
    assert RejectedEvent.objects.count() == 0

    events = list(Event.objects.order_by("timestamp", "id"))
    buyer_id = next(e.anonymous_id for e in events if e.event_type == "purchase")
    bought = [e for e in events if e.anonymous_id == buyer_id]
    assert sorted(e.event_type for e in bought) == sorted(SHOP_TYPES)
    assert len({e.session_id for e in bought}) == 1  # derived by the server: one visit
    assert {e.device_type for e in bought} == {"desktop"}
    assert len({e.anonymous_id for e in events}) == 3  # three visitors, no cookie
    # Sent by fetch while the phone's page lived. (A beacon sent as a page unloads carries the
    # browser's own User-Agent, not the one Playwright sets on the context.)
    assert Event.objects.get(event_type="product_view", product_id="sku_2").device_type == "mobile"
    purchase = next(e for e in bought if e.event_type == "purchase")
    assert (purchase.product_id, purchase.quantity, str(purchase.revenue)) == ("sku_1", 2, "119.80")
    assert purchase.currency == "EUR"
    assert next(e for e in events if e.event_type == "search").search_query == "headphones"

    rollups_advance(now=timezone.now() + rollup_safety_lag() + dt.timedelta(seconds=1))
    dashboard = open_page()
    sign_in(dashboard, analyst)
    dashboard.goto("/funnel/?preset=24h&split=device")
    filters = filters_from_query({"preset": "24h"})
    expected = ref_funnel_counts(ref_sessions(filters))
    assert expected == [3, 2, 2, 1, 1]
    assert _steps_on_page(dashboard.page) == expected
    sessions = ref_sessions(filters)
    # A session's device is its first event's; a beacon sent as a page unloads carries the
    # browser's own User-Agent (see above), so which devices appear depends on which event
    # went first: compare every device the raw rows have.
    devices = sorted({session[1] for session in sessions})
    assert devices
    for device in devices:
        table = "section.card:has(h2:text-is('Conversion by device'))"
        cells = dashboard.page.locator(f"{table} tr:has(td:text-is('{device}')) td")
        on_page = [int(cells.nth(i).inner_text()) for i in range(1, 6)]
        assert on_page == ref_funnel_counts([s for s in sessions if s[1] == device]), device
    dashboard.page.wait_for_function(
        "() => Chart.getChart(document.querySelector('[data-chart=chart-funnel]'))"
    )
    dashboard.assert_clean()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    dashboard.page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert Path(SCREENSHOT).stat().st_size > 10_000


def test_a_visitor_who_signs_in_is_one_person_on_the_dashboard(browser, shop, open_page, analyst):
    """Anonymous until the cart, signed in there (identify, a JSON call behind a real CORS
    preflight), then buys: the person record links the browser's anonymous id to the user id,
    and the overview's users count that visitor once, as raw SQL over events joined to the
    links does (its two ids would count twice)."""
    context, page, errors = shop_page(browser)
    page.goto(shop.url("index.html"))
    page.click("#product-1")
    page.wait_for_selector("#name:text-is('Headphones')")
    page.click("#add")
    page.wait_for_url("**/cart.html")
    with page.expect_response(
        lambda r: "/identify" in r.url and r.request.method == "POST"
    ) as sent:
        page.click("#signin")
    assert sent.value.status == 200
    assert page.evaluate("localStorage.getItem('_tracker_user_id')") == "customer_42"
    page.click("#checkout")
    page.wait_for_url("**/checkout.html")
    page.click("#pay")
    page.wait_for_url("**/thanks.html")
    page.goto("about:blank")
    wait_for(
        lambda: Event.objects.filter(event_type="purchase").exists(), "the purchase", page=page
    )
    page.wait_for_timeout(500)  # the thanks page's view, by beacon
    context.close()
    assert errors == []

    anonymous_id = Event.objects.get(event_type="product_view").anonymous_id
    before = Event.objects.get(event_type="add_to_cart")
    assert (before.user_id, before.anonymous_id) == ("", anonymous_id)
    purchase = Event.objects.get(event_type="purchase")
    assert (purchase.user_id, purchase.anonymous_id) == ("customer_42", anonymous_id)
    person = Person.objects.get(distinct_id="customer_42")
    assert person.traits == {"email": "c42@example.com", "plan": "gold"}
    assert PersonLink.objects.get(linked_id=anonymous_id).user_id == "customer_42"

    rollups_advance(now=timezone.now() + rollup_safety_lag() + dt.timedelta(seconds=1))
    filters = filters_from_query({"preset": "24h"})
    expected = ref_totals(filters)
    assert expected["users"] == 1
    ids = {(e.user_id or e.anonymous_id) for e in Event.objects.all()}
    assert ids == {anonymous_id, "customer_42"}  # two ids, one person
    dashboard = open_page()
    sign_in(dashboard, analyst)
    dashboard.goto("/?preset=24h")
    shown = dashboard.page.locator("[data-kpi=users] .kpi-value").inner_text()
    assert int(shown) == expected["users"]
    assert (
        int(dashboard.page.locator("[data-kpi=events] .kpi-value").inner_text())
        == (expected["events"])
    )
    dashboard.assert_clean()


def test_a_failed_send_is_retried_until_it_is_stored(browser, shop, live_server, tmp_path):
    """The server is down (connection refused) when the page sends; the tracker retries with
    backoff, and the event is stored once when a real TCP proxy to the server comes up."""
    listen = free_port()
    host = f"http://127.0.0.1:{listen}"
    shop.snippet = tracker_snippet(
        host, shop.key, script_host=live_server.url, flush_interval="200"
    )
    context, page, errors = shop_page(browser)
    failures: list[str] = []
    page.on("requestfailed", lambda r: failures.append(r.url) if r.url.startswith(host) else None)
    page.goto(shop.url("index.html"))
    wait_for(lambda: failures, "the first, failing send", page=page)
    control = free_port(after=listen)
    target = live_server.url.removeprefix("http://").replace("localhost", "127.0.0.1")
    proxy = ProxyProcess(listen, target, control, tmp_path / "proxy.log")
    proxy.start()
    try:
        wait_for(lambda: Event.objects.exists(), "the retried send", page=page)
        page.wait_for_timeout(500)
    finally:
        proxy.kill()
        context.close()
    assert Event.objects.count() == 1  # the page view, sent again until it went through, once
    assert Event.objects.get().event_type == "page_view"
    assert all("ERR_CONNECTION_REFUSED" in error for error in errors), errors


@pytest.mark.parametrize(
    "signal",
    [
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
    ],
    ids=["gpc", "dnt"],
)
def test_nothing_is_sent_under_a_privacy_signal_unless_told_to(browser, shop, live_server, signal):
    context, page, _ = shop_page(browser, init_script=signal)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.startswith(live_server.url) else None)
    page.goto(shop.url("index.html"))
    page.click("button[type=submit]")
    page.click("#product-1")
    page.click("#add")
    page.wait_for_url("**/cart.html")
    page.click("#signin")  # identify: no call either
    page.evaluate("window.tracker.alias('customer_42', 'guest-1')")
    assert page.evaluate("window.tracker.disabled") is True
    assert page.evaluate("Object.keys(localStorage)") == []  # no id kept either
    page.goto("about:blank")
    page.wait_for_timeout(1000)  # what a page hide would send, had anything been queued
    assert [url for url in sent if "/static/" not in url] == []
    assert Event.objects.count() == 0
    assert not Person.objects.exists()

    shop.snippet = tracker_snippet(live_server.url, shop.key, respect_privacy="false")
    page.goto(shop.url("index.html"))
    page.goto("about:blank")
    wait_for(lambda: Event.objects.count() == 1, "the page view sent when told to")
    context.close()


def test_memory_storage_keeps_no_id_in_the_browser(browser, shop, live_server):
    shop.snippet = tracker_snippet(live_server.url, shop.key, storage="memory")
    context, page, errors = shop_page(browser)
    page.goto(shop.url("index.html"))
    page.evaluate("window.tracker.identify('customer_7'); window.tracker.track('signup', {})")
    page.evaluate("window.tracker.flush()")
    wait_for(lambda: Event.objects.count() == 2, "the page view and the signup", page=page)
    assert page.evaluate("Object.keys(localStorage).length + document.cookie.length") == 0
    wait_for(lambda: PersonLink.objects.exists(), "the identify call", page=page)
    context.close()
    assert errors == []
    signup = Event.objects.get(event_type="signup")
    assert signup.user_id == "customer_7"
    # The in-memory anonymous id of this page load is linked to the user: one person.
    assert PersonLink.objects.get(linked_id=signup.anonymous_id).user_id == "customer_7"
