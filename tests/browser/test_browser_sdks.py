"""The vendors' browser SDKs, unchanged, on a real page (issue 11): the test shop served from
its own origin (real CORS) loads each SDK's own bundle from the installed npm package (no CDN),
set up with only our host and a public key as the SDK's docs say, and a visitor views the home
page, searches, views a product, adds it, signs in (identify), checks out, pays and signs up
for the newsletter (a custom event). What is stored is asserted field by field (ids, names,
mapped and derived fields, the person link), and the dashboard's numbers equal raw SQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics_site.sql import rollup_safety_lag
from events.models import Event, Person, PersonLink, RejectedEvent
from reports.filters import filters_from_query
from reports.services.rollups import rollups_advance
from tests.browser.conftest import sign_in
from tests.browser.sdk_snippets import posthog_snippet, segment_snippet, snowplow_snippet
from tests.browser.shop_pages import NOT_AUTOMATED, VISITOR, shop_page, wait_for
from tests.dashboard_reference import ref_funnel_counts, ref_sessions, ref_totals

pytestmark = [pytest.mark.browser, pytest.mark.postgres]
USER = "customer_42"
TRAITS = {"email": "c42@example.com", "plan": "gold"}


def _visit(browser, shop) -> None:
    """One visitor from the home page to the thanks page, signing in at the cart. The visitor
    stays on each page until its requests are done (a person reads a page for a while; a call
    still queued in an SDK's snippet when the page unloads is lost, by the SDK's design)."""
    context, page, errors = shop_page(browser, init_script=NOT_AUTOMATED, device=VISITOR)

    def settled() -> None:
        page.wait_for_load_state("networkidle")

    page.goto(shop.url("index.html"))
    settled()
    page.click("button[type=submit]")  # search
    settled()
    page.click("#product-1")
    page.wait_for_selector("#name:text-is('Headphones')")
    settled()
    page.click("#add")
    page.wait_for_url("**/cart.html")
    settled()
    page.click("#signin")
    page.wait_for_selector("#signin:text-is('Signed in')")
    page.click("#checkout")
    page.wait_for_url("**/checkout.html")
    settled()
    page.click("#pay")
    page.wait_for_url("**/thanks.html")
    settled()
    page.goto("about:blank")  # page hide: what the SDK still holds leaves now
    wait_for(
        lambda: (
            Event.objects.filter(event_type="newsletter_signup").exists()
            and Event.objects.filter(event_type="page_view", page_url__contains="thanks").exists()
        ),
        "the visit's last events",
        page=page,
    )
    page.wait_for_timeout(500)  # anything still in flight
    context.close()
    assert errors == [], errors


def _dashboard_equals_raw_sql(open_page, analyst, source: str) -> None:
    """The overview's users and events and the funnel's steps equal raw SQL over the rows."""
    rollups_advance(now=timezone.now() + rollup_safety_lag() + dt.timedelta(seconds=1))
    filters = filters_from_query({"preset": "24h"})
    totals = ref_totals(filters)
    assert totals["users"] == 1  # the anonymous visitor who signed in is one person
    dashboard = open_page()
    sign_in(dashboard, analyst)
    dashboard.goto("/?preset=24h")
    kpi = dashboard.page.locator
    assert int(kpi("[data-kpi=users] .kpi-value").inner_text()) == totals["users"]
    assert (
        int(kpi("[data-kpi=events] .kpi-value").inner_text().replace(",", "")) == (totals["events"])
    )
    dashboard.goto("/funnel/?preset=24h")
    rows = dashboard.page.locator("section.card:has(h2:text-is('Steps')) tbody tr")
    steps = [int(rows.nth(i).locator("td").nth(1).inner_text().replace(",", "")) for i in range(5)]
    assert steps == ref_funnel_counts(ref_sessions(filters))
    dashboard.assert_clean()
    dashboard.screenshot(f"browser-sdk-{source}-funnel")  # test-artifacts/screenshots


def _stored_as_sent(shop, source: str, traits: dict) -> None:
    """Every step of the visit stored once, with the SDK's ids, our names and mapped fields,
    the derived device, one session, and the device's id linked to the user. An SDK that sends
    no session id (analytics.js) gets it derived per person (ADR 0014): the anonymous id sent
    beside the user id after signing in makes the whole visit one session."""
    assert RejectedEvent.objects.count() == 0
    events = list(Event.objects.order_by("timestamp", "id"))
    types = [event.event_type for event in events]
    for expected in ("search", "product_view", "add_to_cart", "checkout_start", "purchase"):
        assert types.count(expected) == 1, types
    assert types.count("newsletter_signup") == 1, types
    assert types.count("page_view") >= 5, types  # index, product, cart, checkout, thanks
    assert {event.source for event in events} == {source}
    viewed = Event.objects.get(event_type="product_view")
    assert viewed.user_id == ""  # before signing in
    anonymous_id = viewed.anonymous_id
    assert anonymous_id and {event.anonymous_id for event in events} == {anonymous_id}
    assert (viewed.product_id, viewed.category, viewed.price) == ("sku_1", "audio", Decimal("59.9"))
    assert viewed.page_url.startswith(shop.url("product.html"))
    assert viewed.device_type == "desktop"  # derived from the User-Agent
    assert viewed.session_id
    assert len({event.session_id for event in events}) == 1  # one visit, across the sign-in
    purchase = Event.objects.get(event_type="purchase")
    assert purchase.user_id == USER  # after signing in
    assert (purchase.revenue, purchase.currency) == (Decimal("119.80"), "EUR")
    assert purchase.order_id.startswith("order_")
    assert Event.objects.get(event_type="add_to_cart").quantity == 2
    assert Event.objects.get(event_type="search").search_query == "headphones"
    assert PersonLink.objects.get(linked_id=anonymous_id).user_id == USER
    assert Person.objects.get(distinct_id=USER).traits == traits


def test_posthog_js(browser, browser_sdks, shop, live_server, open_page, analyst):
    """posthog-js's snippet with `api_host` and the public key: its remote config, its batched
    captures (gzip, flagged nowhere) and its beacon on page hide are read; `identify` links the
    device's id to the user and sets the traits."""
    shop.snippet = posthog_snippet(live_server.url, shop.key)
    _visit(browser, shop)
    _stored_as_sent(shop, "posthog", TRAITS)
    assert Event.objects.get(event_type="newsletter_signup").properties["source"] == "checkout"
    _dashboard_equals_raw_sql(open_page, analyst, "posthog")


def test_snowplow_browser_tracker(browser, browser_sdks, shop, live_server, open_page, analyst):
    """Snowplow's browser tracker with our host as collector and the key as app id, and its
    e-commerce plugin: each event POSTed as JSON (a preflight first, credentials included by
    default); `setUserId` links the browser's domain user id to the user."""
    shop.snippet = snowplow_snippet(live_server.url, shop.key)
    _visit(browser, shop)
    _stored_as_sent(shop, "snowplow", {})
    signup = Event.objects.get(event_type="newsletter_signup")
    assert (signup.properties["ca"], signup.properties["la"]) == ("shop", "checkout")
    _dashboard_equals_raw_sql(open_page, analyst, "snowplow")


def test_segment_analytics_js(browser, browser_sdks, shop, live_server, open_page, analyst):
    """analytics.js (analytics-next) with its CDN set to our host: its settings from
    /v1/projects/<key>/settings, then each call posted to /v1/p, /v1/t, /v1/i as text/plain
    with the key as Basic auth (a preflight first); `identify` links the anonymous id."""
    shop.snippet = segment_snippet(live_server.url, shop.key)
    _visit(browser, shop)
    _stored_as_sent(shop, "segment", TRAITS)
    assert Event.objects.get(event_type="newsletter_signup").properties["source"] == "checkout"
    _dashboard_equals_raw_sql(open_page, analyst, "segment")
