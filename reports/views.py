"""Dashboard pages. Thin: parse filters, call one selector, shape for the template.

Each page renders in full, or only its `dashboard` partial (charts and tables) for htmx
requests, so filters swap the data region without reloading the page. The partial's response
pushes the canonical, shareable URL of the filters it shows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django_htmx.http import push_url

from analytics_site.replica import replica_reads
from events.schema import DEVICE_TYPES
from reports import charts, csv_export
from reports.filters import (
    CUSTOM,
    DEFAULT_PRESET,
    PRESETS,
    DashboardFilters,
    filters_from_query,
    filters_ignored,
)
from reports.selectors import pages

SPLITS = ("device", "country")
SECOND = dt.timedelta(seconds=1)
KPI_LABELS = (
    ("events", "Events", "int"),
    ("sessions", "Sessions", "int"),
    ("users", "Users", "int"),
    ("conversion_rate", "Conversion rate", "ratio"),
    ("revenue", "Revenue", "money"),
    ("average_order_value", "Average order value", "money"),
)
EMPTY_HINT = "python manage.py generate_sample_data --events 1000"


# --- per-page data (also what CSV downloads read) -------------------------------------------


def _split(request: HttpRequest) -> str | None:
    split = request.GET.get("split")
    return split if split in SPLITS else None


PAGE_DATA: dict[str, Callable[[HttpRequest, DashboardFilters], dict[str, Any]]] = {
    "overview": lambda request, filters: pages.overview(filters),
    "funnel": lambda request, filters: pages.funnel(filters, split_by=_split(request)),
    "products": lambda request, filters: pages.products(filters),
    "audience": lambda request, filters: pages.audience(filters),
    "live": lambda request, filters: pages.live(),
    "quality": lambda request, filters: pages.quality_page(filters),
}


# --- per-page shaping: charts and KPI cards --------------------------------------------------


def _overview_context(data: dict[str, Any], filters: DashboardFilters) -> dict[str, Any]:
    kpis = [
        {"name": name, "label": label, "kind": kind, **data["kpis"][name]}
        for name, label, kind in KPI_LABELS
    ]
    total = data["kpis"]["events"]["value"]
    return {
        "kpis": kpis,
        "event_mix": [{**row, "share": row["count"] / total} for row in data["event_mix"]],
        "has_data": total > 0,
        "charts": {
            "events": charts.overview_events(data["series"]),
            "revenue": charts.overview_revenue(data["series"]),
            "mix": charts.event_mix(data["event_mix"]),
        },
    }


def _funnel_context(data: dict[str, Any], filters: DashboardFilters) -> dict[str, Any]:
    return {
        "has_data": data["steps"][0]["sessions"] > 0,
        "charts": {"funnel": charts.funnel(data["steps"], data["splits"])},
    }


def _products_context(data: dict[str, Any], filters: DashboardFilters) -> dict[str, Any]:
    return {
        "has_data": bool(data["top_viewed"] or data["top_added"] or data["top_purchased"]),
        "charts": {
            "viewed": charts.top_products(data["top_viewed"], "Views"),
            "added": charts.top_products(data["top_added"], "Adds to cart"),
            "purchased": charts.top_products(data["top_purchased"], "Purchases"),
            "categories": charts.category_revenue(data["revenue_by_category"]),
        },
    }


def _audience_context(data: dict[str, Any], filters: DashboardFilters) -> dict[str, Any]:
    return {
        "has_data": bool(data["devices"]),
        "charts": {
            "devices": charts.dimension(data["devices"], "device_type"),
            "countries": charts.dimension(data["countries"], "country", kind="bar"),
            "new_vs_returning": charts.new_vs_returning(data["new_vs_returning"]),
        },
    }


def _live_context(data: dict[str, Any], filters: DashboardFilters) -> dict[str, Any]:
    return {
        "has_data": any(row["count"] for row in data["per_minute"]) or bool(data["newest"]),
        "events_last_30": sum(row["count"] for row in data["per_minute"]),
        "poll_seconds": getattr(settings, "REPORTS_LIVE_POLL_SECONDS", 5),
        "charts": {"per_minute": charts.live_per_minute(data["per_minute"])},
    }


def _quality_context(data: dict[str, Any], filters: DashboardFilters) -> dict[str, Any]:
    series = data["pass_rate_series"] or []
    accepted = sum(row["accepted"] for row in series)
    rejected = sum(row["rejected"] for row in series)
    total = accepted + rejected
    return {
        "has_data": total > 0 or data["freshness"]["newest_event"] is not None,
        "pass_rate": accepted / total if total else None,
        "below_target": bool(total) and accepted / total < data["target"],
        "charts": {
            "pass_rate": charts.pass_rate(series, data["target"], filters.bucket),
            "quarantine": charts.quarantine_by_rule((data["quarantine"] or {}).get("by_rule", {})),
        },
    }


PAGE_CONTEXT: dict[str, Callable[[dict[str, Any], DashboardFilters], dict[str, Any]]] = {
    "overview": _overview_context,
    "funnel": _funnel_context,
    "products": _products_context,
    "audience": _audience_context,
    "live": _live_context,
    "quality": _quality_context,
}

PAGE_TITLES = {
    "overview": "Overview",
    "funnel": "Funnel",
    "products": "Products",
    "audience": "Audience",
    "live": "Live",
    "quality": "Data quality",
}


# --- links that keep the filters ------------------------------------------------------------


def _query(filters: DashboardFilters, split: str | None = None) -> str:
    query = filters.as_query()
    return f"{query}&split={split}" if split else query


def _filter_links(page: str, filters: DashboardFilters, split: str | None) -> dict[str, Any]:
    """Everything the filter bar needs: preset links, current values, choices."""
    presets = [
        {
            "key": key,
            "query": _query(dataclasses.replace(filters, preset=key), split),
            "active": filters.preset == key,
        }
        for key in PRESETS
    ]
    splits = [
        {"key": key, "label": label, "query": _query(filters, key), "active": split == key}
        for key, label in (
            (None, "All sessions"),
            ("device", "By device"),
            ("country", "By country"),
        )
    ]
    return {
        "presets": presets,
        "splits": splits,
        "split": split,
        "query": _query(filters, split),
        "start_date": filters.start.date().isoformat(),
        "end_date": (filters.end - SECOND).date().isoformat(),
        "period_last": filters.end - SECOND,
        "is_custom": filters.preset == CUSTOM,
        "devices": DEVICE_TYPES,
        "show_dimensions": page != "quality",
    }


# --- views ----------------------------------------------------------------------------------


def _nav_query(page: str, filters: DashboardFilters) -> str:
    """The filters other pages should open with (none when they are the defaults)."""
    query = filters.as_query()
    return "" if page == "live" or query == f"preset={DEFAULT_PRESET}" else query


def _dashboard(request: HttpRequest, page: str) -> HttpResponse:
    filters = filters_from_query(request.GET)
    if page == "quality":  # rules and quarantine have no trustworthy device or country
        filters = dataclasses.replace(filters, device=None, country=None)
    split = _split(request) if page == "funnel" else None
    with replica_reads():  # read-only: the replica when usable (ADR 0022)
        data = PAGE_DATA[page](request, filters)
        any_events = pages.freshness()["newest_event"] is not None
    context = {
        "page": page,
        "title": PAGE_TITLES[page],
        "filters": filters,
        "data": data,
        "empty_hint": EMPTY_HINT,
        "any_events": any_events,
        "nav_query": _nav_query(page, filters),
        # a custom range that filters_from_query refused (end before start, too long, bad date)
        "range_refused": request.GET.getlist("preset")[-1:] == [CUSTOM]
        and filters.preset != CUSTOM,
        # unknown device, country or preset values: dropped, and the page says so
        "filters_ignored": filters_ignored(request.GET),
        **_filter_links(page, filters, split),
        **PAGE_CONTEXT[page](data, filters),
    }
    partial = bool(request.htmx) and not request.htmx.history_restore_request
    template = f"reports/{page}.html"
    response = render(request, f"{template}#dashboard" if partial else template, context)
    if partial and page != "live":
        response = push_url(response, f"{request.path}?{context['query']}")
        # the navigation sits outside the swapped region: refresh it out of band so that
        # switching pages keeps the period and filters just chosen
        nav = render_to_string("_mainnav.html", {**context, "oob": True}, request=request)
        response.content += nav.encode()
    patch_vary_headers(response, ("HX-Request",))
    return response


# Anonymous visitors go to the login page; a signed-in user whose role lacks the permission gets
# 403 (redirecting them to the login page again would loop).
@login_required
@permission_required("reports.view_dashboards", raise_exception=True)
def dashboard_page(request: HttpRequest, page: str) -> HttpResponse:
    """One dashboard page; `page` comes from the URL conf, never from the request."""
    return _dashboard(request, page)


@login_required
@permission_required(["reports.view_dashboards", "reports.download_csv"], raise_exception=True)
def table_csv(request: HttpRequest, page: str, table: str) -> HttpResponse:
    """One table of a page as CSV, with the same filters as the page."""
    if not csv_export.table_exists(page, table):
        raise Http404(f"no table {table!r} on page {page!r}")
    filters = filters_from_query(request.GET)
    with replica_reads():
        data = PAGE_DATA[page](request, filters)
    response = HttpResponse(
        csv_export.table_csv(page, table, data), content_type="text/csv; charset=utf-8"
    )
    period = f"{filters.start:%Y%m%d}-{filters.end - SECOND:%Y%m%d}"
    response["Content-Disposition"] = f'attachment; filename="{page}-{table}-{period}.csv"'
    return response


@login_required
@permission_required("reports.view_dashboards", raise_exception=True)
def check_detail(request: HttpRequest, check_id: int) -> HttpResponse:
    """One dataset check: its metric over time against its threshold, runs with their
    failing-row samples, and incidents. htmx requests get only the `check` partial."""
    with replica_reads():
        data = pages.check_page(check_id)
    if data is None:
        raise Http404(f"no check {check_id}")
    context = {
        "page": "quality",
        "title": f"Check {data['check']['name']}",
        "data": data,
        "nav_query": "",
        "chart": charts.check_metric(data["series"], data["check"]["kind"]),
    }
    partial = bool(request.htmx) and not request.htmx.history_restore_request
    template = "reports/check.html"
    response = render(request, f"{template}#check" if partial else template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
