"""Dashboard pages through the Django test client: login, full pages and htmx partials, the
numbers they show for seeded events (the `seeded` fixture, tests/integration/conftest.py),
filters and empty states. CSV downloads: test_page_csv.py."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from events.services import IngestSource, event_batch_ingest
from quality.models import QualityIncident
from reports.filters import filters_from_query
from reports.selectors import pages
from tests.factories import EventFactory, QualityRuleFactory, purchase_payload
from tests.helpers import user_with_role

PAGES = {
    "overview": "/",
    "funnel": "/funnel/",
    "products": "/products/",
    "audience": "/audience/",
    "live": "/live/",
    "quality": "/quality/",
}


@pytest.mark.parametrize("path", [*PAGES.values(), "/funnel/csv/steps/"])
def test_pages_redirect_anonymous_users_to_login(client, db, path):
    """Every dashboard page and download needs a signed-in user."""
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


def test_login_form_signs_in_and_lands_on_overview(client, django_user_model):
    """The styled sign-in page works with Django auth and returns to the dashboards."""
    user_with_role("Viewer", username="analyst", password="pw-analyst-123")
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(
        reverse("login"), {"username": "analyst", "password": "pw-analyst-123", "next": "/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_form_rejects_a_wrong_password(client, django_user_model):
    """A wrong password shows an error instead of signing in."""
    django_user_model.objects.create_user(username="analyst", password="pw-analyst-123")
    response = client.post(reverse("login"), {"username": "analyst", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content


@pytest.mark.parametrize("page", PAGES)
def test_full_page_renders_with_navigation_and_assets(user_client, seeded, page):
    """A full page has the layout, the active nav entry, and vendored (never CDN) scripts."""
    response = user_client.get(PAGES[page])
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert f'href="{PAGES[page]}" aria-current="page"' in html
    assert html.count('aria-current="page"') == 1
    assert "/static/vendor/htmx-2.0.11.min.js" in html
    assert "/static/vendor/chart.js-4.6.1.umd.min.js" in html
    assert "/static/reports/js/charts.js" in html
    assert "https://" not in html.replace("https://www.w3.org", "")
    assert response["Vary"].count("HX-Request") == 1


@pytest.mark.parametrize("page", PAGES)
def test_htmx_request_gets_only_the_partial(user_client, seeded, page):
    """An htmx request swaps the data region: no layout, charts and tables only."""
    response = user_client.get(PAGES[page], headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "topbar" not in html
    assert 'id="dashboard"' not in html  # the swap target stays on the page
    assert "data-chart=" in html
    assert "application/json" in html  # the json_script specs travel with the partial


def test_history_restore_request_gets_the_full_page(user_client, seeded):
    """htmx's history restore (back button after a cache miss) needs the whole page."""
    response = user_client.get(
        "/funnel/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.content.decode()


def test_partial_pushes_the_canonical_shareable_url(user_client, seeded):
    """Filter changes push a clean URL that reproduces the view when shared."""
    response = user_client.get(
        "/funnel/?preset=30d&device=mobile&country=&start=&end=&split=device",
        headers={"HX-Request": "true"},
    )
    assert response["HX-Push-Url"] == "/funnel/?preset=30d&device=mobile&split=device"
    live = user_client.get("/live/", headers={"HX-Request": "true"})
    assert "HX-Push-Url" not in live  # polling must not rewrite history


def test_partial_refreshes_navigation_so_pages_keep_the_filters(user_client, seeded):
    """After a filter change, the nav links (outside the swapped region) carry the filters."""
    html = user_client.get("/?preset=30d&country=DE", headers={"HX-Request": "true"}).content
    html = html.decode()
    assert 'id="mainnav" aria-label="Dashboards" hx-swap-oob="true"' in html
    assert 'href="/funnel/?preset=30d&amp;country=DE"' in html
    assert 'href="/live/"' in html  # live has no filters
    full = user_client.get("/products/?preset=90d").content.decode()
    assert 'href="/?preset=90d" hx-swap-oob' not in full
    assert 'href="/?preset=90d"' in full
    assert 'href="/quality/?preset=90d"' in full
    polled = user_client.get("/live/", headers={"HX-Request": "true"}).content.decode()
    assert "mainnav" not in polled


def test_overview_numbers_match_seeded_events_and_selector(user_client, seeded):
    """KPIs are exactly what was seeded, and exactly what the selector returns."""
    response = user_client.get("/")
    data = response.context["data"]
    assert data == pages.overview(filters_from_query({}))
    kpis = {kpi["name"]: kpi["value"] for kpi in response.context["kpis"]}
    assert kpis["events"] == 8
    assert kpis["sessions"] == 3
    assert kpis["users"] == 3
    assert kpis["revenue"] == 20.0
    assert kpis["average_order_value"] == 20.0
    assert kpis["conversion_rate"] == pytest.approx(1 / 3, abs=1e-6)
    html = response.content.decode()
    assert ">20.00<" in html
    assert ">33.3%<" in html
    assert data["quality"]["quarantined"] == 2
    assert data["quality"]["note"] in html.replace("&#x27;", "'")


@pytest.mark.parametrize(
    ("page", "selector", "kwargs"),
    [
        ("funnel", pages.funnel, {}),
        ("products", pages.products, {}),
        ("audience", pages.audience, {}),
        ("quality", pages.quality_page, {}),
    ],
)
def test_page_context_is_the_selector_output(user_client, seeded, page, selector, kwargs):
    """Pages show selector output unchanged: the numbers tested there are the numbers shown."""
    response = user_client.get(PAGES[page])
    expected = selector(filters_from_query({}), **kwargs)
    actual = response.context["data"]
    if page == "quality":  # freshness is measured at request time
        actual = {**actual, "freshness": None}
        expected = {**expected, "freshness": None}
    assert actual == expected


def test_funnel_counts_and_split_by_device(user_client, seeded):
    """Funnel steps count sessions; the device split separates desktop from mobile."""
    response = user_client.get("/funnel/?split=device")
    steps = {step["step"]: step["sessions"] for step in response.context["data"]["steps"]}
    assert steps == {
        "page_view": 3,
        "product_view": 2,
        "add_to_cart": 1,
        "checkout_start": 1,
        "purchase": 1,
    }
    splits = {split["key"]: split["steps"] for split in response.context["data"]["splits"]}
    assert set(splits) == {"desktop", "mobile"}
    assert splits["mobile"][0]["sessions"] == 2
    assert splits["mobile"][-1]["sessions"] == 0
    assert response.context["data"] == pages.funnel(filters_from_query({}), "device")
    assert "Conversion by device" in response.content.decode()


def test_device_and_country_filters_narrow_the_numbers(user_client, seeded):
    """?device=mobile&country=DE keeps only session s2's events, and the form shows them."""
    response = user_client.get("/?device=mobile&country=DE")
    kpis = {kpi["name"]: kpi["value"] for kpi in response.context["kpis"]}
    assert kpis["events"] == 2
    assert kpis["users"] == 1
    html = response.content.decode()
    assert '<option value="mobile" selected>' in html
    assert '<option value="DE" selected>' in html
    assert 'href="/?preset=30d&amp;device=mobile&amp;country=DE"' in html


def test_custom_range_and_invalid_values(user_client, seeded):
    """A custom range is honoured; nonsense values fall back to defaults instead of failing."""
    today = timezone.now().date()
    start = (today - dt.timedelta(days=2)).isoformat()
    response = user_client.get(f"/?preset=custom&start={start}&end={today.isoformat()}")
    filters = response.context["filters"]
    assert filters.preset == "custom"
    assert filters.start.date().isoformat() == start
    # the form's "Apply dates" button sends preset twice (hidden field, then the button)
    both = user_client.get(f"/?preset=7d&start={start}&end={today.isoformat()}&preset=custom")
    assert both.context["filters"].preset == "custom"
    backwards = user_client.get(f"/?preset=custom&start={today.isoformat()}&end={start}")
    assert backwards.context["filters"].preset == "7d"
    assert "That date range can't be shown" in backwards.content.decode()
    bad = user_client.get("/?preset=1y&device=toaster&country=QQ&start=yesterday")
    assert bad.status_code == 200
    assert bad.context["filters"].preset == "7d"
    assert bad.context["filters"].device is None


def test_unknown_filter_values_are_ignored_and_the_page_says_so(user_client, seeded):
    """An unknown device, country or preset falls back to the default, and the page names what
    it ignored (escaped), on the full page and in the htmx partial; known values say nothing."""
    # QQ: not a country ("ZZ" is now the unknown-country value, a valid filter).
    response = user_client.get("/?device=toaster&country=QQ&preset=bogus")
    assert response.status_code == 200
    filters = response.context["filters"]
    assert (filters.preset, filters.device, filters.country) == ("7d", None, None)
    assert response.context["filters_ignored"] == [
        "Ignored unknown device 'toaster'",
        "Ignored unknown country 'QQ'",
        "Ignored unknown preset 'bogus'",
    ]
    html = response.content.decode()
    assert "Ignored unknown device &#x27;toaster&#x27;" in html
    assert "Ignored unknown country &#x27;QQ&#x27;" in html
    assert "Ignored unknown preset &#x27;bogus&#x27;" in html
    partial = user_client.get("/funnel/?device=<b>x</b>", HTTP_HX_REQUEST="true")
    assert "Ignored unknown device &#x27;&lt;b&gt;x&lt;/b&gt;&#x27;" in partial.content.decode()
    known = user_client.get("/?device=mobile&country=de&preset=30d")
    assert known.context["filters_ignored"] == []
    assert "Ignored unknown" not in known.content.decode()
    custom = user_client.get("/?preset=custom&start=2026-01-01&end=2026-01-02")
    assert custom.context["filters_ignored"] == []


def test_live_page_shows_newest_events_and_polls(user_client, seeded):
    """Live lists the newest events and its partial re-requests itself every few seconds."""
    response = user_client.get("/live/")
    html = response.content.decode()
    assert 'hx-trigger="every 5s"' in html
    newest = response.context["data"]["newest"]
    assert [event["user_id"] for event in newest[:1]] == ["user_c"]
    assert len(newest) == 8
    # the last 30 minutes hold the events seeded 29 and 10 minutes ago
    assert sum(row["count"] for row in response.context["data"]["per_minute"]) == 2


@pytest.mark.parametrize("page", PAGES)
def test_empty_database_shows_what_to_do(user_client, page):
    """With no events, each page says how to load sample data instead of empty charts."""
    html = user_client.get(PAGES[page]).content.decode()
    assert "No events yet" in html
    assert "python manage.py generate_sample_data --events 1000" in html


def test_empty_period_is_told_apart_from_empty_database(user_client, db):
    """Old events only: the page says the period is empty and offers longer periods."""
    EventFactory(timestamp=timezone.now() - dt.timedelta(days=60))
    html = user_client.get("/").content.decode()
    assert "No events in this period" in html
    assert "?preset=90d" in html


def test_quality_notes_link_open_incidents_that_touch_the_chart(user_client, seeded):
    """An open revenue incident is linked from overview and products, not from audience."""
    now = timezone.now()
    incident = QualityIncident.objects.create(
        source_type=QualityIncident.SourceType.CHECK,
        source_key="check:revenue-nulls",
        title="Purchases without revenue",
        opened_at=now,
        last_seen_at=now,
        fields=["revenue"],
        event_types=["purchase"],
    )
    admin_url = reverse("admin:quality_qualityincident_change", args=[incident.pk])
    for path in ("/", "/products/", "/quality/"):
        assert admin_url in user_client.get(path).content.decode(), path
    assert admin_url not in user_client.get("/audience/").content.decode()
    overview = user_client.get("/").content.decode()
    assert (
        "of this period&#x27;s events are held in quarantine"
        in user_client.get("/funnel/").content.decode()
    )
    assert "revenue excludes" in overview.lower()


def test_quality_page_says_how_many_events_each_stored_rule_checked(user_client, db):
    """A failure rate reads right only next to what it is a rate of: 1 of 4 checked."""
    QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )
    payloads = [purchase_payload(price=150, quantity=1, revenue=150)]
    payloads += [purchase_payload() for _ in range(3)]
    event_batch_ingest(payloads, source=IngestSource(ip="10.0.0.1"))
    html = user_client.get(PAGES["quality"]).content.decode()
    row = re.search(r"<tr><td>price-cap</td>.*?</tr>", html).group(0)
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["1", "0", "4", "25.00%"]
