"""The default rule set and dataset checks.

Loaded by `manage.py load_default_rules` (idempotent: matched by name, existing rows and an
analyst's edits are left alone unless --reset). Not a data migration, on purpose: a fresh
test database starts with no rules, so tests say which rules they rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from quality.models import QualityCheck, QualityRule
from quality.services.rules import rule_set_bump

CURRENCIES = ["USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "SEK", "PLN", "BRL", "INR", "MXN"]
SHOPPING = ["product_view", "add_to_cart", "remove_from_cart", "purchase"]

DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "name": "purchase-needs-order-id",
        "description": "A purchase without an order id cannot be reconciled with the shop.",
        "kind": "required_if",
        "field": "order_id",
        "params": {"when_field": "event_type", "values": ["purchase"]},
        "event_types": ["purchase"],
    },
    {
        "name": "revenue-equals-price-times-quantity",
        "description": "Revenue must be price × quantity (1 cent tolerance).",
        "kind": "revenue_matches",
        "field": "revenue",
        "params": {"tolerance": 0.01},
        "event_types": ["purchase"],
    },
    {
        "name": "order-id-unique-per-day",
        "description": "The same order id on two purchases in one day double-counts revenue.",
        "kind": "unique_per_day",
        "field": "order_id",
        "params": {},
        "event_types": ["purchase"],
    },
    {
        "name": "checkout-needs-known-session",
        "description": "checkout_start should follow earlier events of the same session.",
        "kind": "session_exists",
        "field": "session_id",
        "params": {"lookback_days": 7},
        "event_types": ["checkout_start"],
    },
    {
        "name": "timestamp-not-older-than-10-years",
        "description": "A device clock reset (1970, 2000) is garbage, not history: quarantine it.",
        "kind": "max_age",
        "field": "timestamp",
        "params": {"days": 3650},
    },
    {
        "name": "timestamp-older-than-30-days",
        "description": "Backfilled events are accepted but flagged: they rewrite closed periods.",
        "kind": "max_age",
        "field": "timestamp",
        "params": {"days": 30},
        "severity": "warning",
    },
    {
        "name": "timestamp-not-in-future",
        "description": "Event time at most 5 minutes after receipt (after skew correction).",
        "kind": "future_skew",
        "field": "timestamp",
        "params": {"seconds": 300},
    },
    {
        "name": "price-in-range",
        "description": "Prices are positive and below 100,000.",
        "kind": "range",
        "field": "price",
        "params": {"min": 0.01, "max": 100000},
        "event_types": SHOPPING,
    },
    {
        "name": "quantity-in-range",
        "description": "Quantities from 1 to 100 per line.",
        "kind": "range",
        "field": "quantity",
        "params": {"min": 1, "max": 100},
        "event_types": ["add_to_cart", "remove_from_cart", "purchase"],
    },
    {
        "name": "revenue-in-range",
        "description": "Revenue is positive and below 1,000,000 per order.",
        "kind": "range",
        "field": "revenue",
        "params": {"min": 0.01, "max": 1000000},
        "event_types": ["purchase"],
    },
    {
        "name": "purchase-needs-price",
        "description": "Without a price, revenue cannot be checked.",
        "kind": "required",
        "field": "price",
        "params": {},
        "event_types": ["purchase"],
        "severity": "warning",
    },
    {
        "name": "purchase-needs-currency",
        "description": "Revenue without a currency cannot be converted.",
        "kind": "required",
        "field": "currency",
        "params": {},
        "event_types": ["purchase"],
    },
    {
        "name": "currency-supported",
        "description": "Currencies the shop sells in.",
        "kind": "allowed_values",
        "field": "currency",
        "params": {"values": CURRENCIES},
        "severity": "warning",
    },
    {
        "name": "product-id-format",
        "description": "Catalog ids look like sku_123 or SKU-123.",
        "kind": "regex",
        "field": "product_id",
        "params": {"pattern": "^[A-Za-z0-9][A-Za-z0-9_\\-:.]{0,63}$"},
        "severity": "warning",
    },
    {
        "name": "page-url-is-path-or-http",
        "description": "A page URL is a path (/...) or an absolute http(s) URL.",
        "kind": "regex",
        "field": "page_url",
        "params": {"pattern": "^(/|https?://)\\S*$"},
        "severity": "warning",
    },
    {
        "name": "search-query-not-empty",
        "description": "A search with only blanks is a tracking bug.",
        "kind": "required",
        "field": "search_query",
        "params": {},
        "event_types": ["search"],
    },
    {
        "name": "search-query-max-200",
        "description": "Longer queries are pasted text or bots.",
        "kind": "max_length",
        "field": "search_query",
        "params": {"max": 200},
        "event_types": ["search"],
        "severity": "warning",
    },
    {
        "name": "product-view-has-category",
        "description": "Category breakdowns need it.",
        "kind": "required",
        "field": "category",
        "params": {},
        "event_types": ["product_view"],
        "severity": "warning",
    },
    {
        # Off by default: any printable name is a custom event (ADR 0014). Analysts who want a
        # closed taxonomy list their names here, enable it, and pick warning or error.
        "name": "allowed-event-names",
        "description": "Only these event names are expected (warning: accepted and recorded; "
        "error: quarantined). Add your custom event names to the list before enabling.",
        "kind": "allowed_values",
        "field": "event_type",
        "params": {
            "values": [
                "page_view",
                "product_view",
                "search",
                "add_to_cart",
                "remove_from_cart",
                "checkout_start",
                "purchase",
            ]
        },
        "severity": "warning",
        "enabled": False,
    },
]

DEFAULT_CHECKS: list[dict[str, Any]] = [
    {
        "name": "events-fresh",
        "description": "The newest event is at most 15 minutes old.",
        "kind": "freshness",
        "params": {},
        "threshold": 15,
        "interval_minutes": 5,
    },
    {
        "name": "volume-last-hour",
        "description": "Events in the last hour vs the same hour on the previous 7 days.",
        "kind": "volume_anomaly",
        "params": {"window_minutes": 60, "baseline_days": 7, "min_baseline_days": 3},
        "threshold": 3.5,
        "interval_minutes": 15,
        "severity": "warning",
    },
    {
        "name": "purchase-currency-null-rate",
        "description": "Purchases without currency, last 24 hours.",
        "kind": "null_rate",
        "params": {"field": "currency", "event_types": ["purchase"], "window_minutes": 1440},
        "threshold": 0.01,
        "interval_minutes": 15,
    },
    {
        "name": "product-view-category-null-rate",
        "description": "Product views without category, last 24 hours.",
        "kind": "null_rate",
        "params": {"field": "category", "event_types": ["product_view"], "window_minutes": 1440},
        "threshold": 0.05,
        "interval_minutes": 15,
        "severity": "warning",
    },
    {
        "name": "duplicate-rate",
        "description": "Same session, type, product and time under different event ids.",
        "kind": "duplicate_rate",
        "params": {"window_minutes": 1440},
        "threshold": 0.01,
        "interval_minutes": 15,
    },
    {
        "name": "device-mix-drift",
        "description": "Device mix of the last 24 h vs the 7 days before (total variation).",
        "kind": "distribution_drift",
        "params": {"field": "device_type", "window_minutes": 1440, "baseline_days": 7},
        "threshold": 0.15,
        "interval_minutes": 60,
        "severity": "warning",
    },
    {
        "name": "event-type-mix-drift",
        "description": "Event-type mix of the last 24 h vs the 7 days before.",
        "kind": "distribution_drift",
        "params": {"field": "event_type", "window_minutes": 1440, "baseline_days": 7},
        "threshold": 0.15,
        "interval_minutes": 60,
        "severity": "warning",
    },
    {
        "name": "purchases-have-checkout",
        "description": "Purchases whose session has no checkout_start, last 24 hours.",
        "kind": "funnel_sanity",
        "params": {"window_minutes": 1440},
        "threshold": 0.02,
        "interval_minutes": 15,
    },
    {
        "name": "validation-pass-rate",
        "description": "At least 99.5% of events received in the last 7 days pass validation "
        "(the product's SLO; the Data quality page shows it per hour).",
        "kind": "validation_pass_rate",
        "params": {"window_minutes": 10080},
        "threshold": 0.995,
        "interval_minutes": 5,
    },
]


@dataclass(frozen=True, slots=True)
class DefaultsLoaded:
    rules_created: int
    rules_updated: int
    checks_created: int
    checks_updated: int


# What a shipped definition leaves out, so that --reset restores every field.
_BASE = {
    QualityRule: {
        "description": "",
        "event_types": [],
        "severity": "error",
        "enabled": True,
        "alert_channels": [],
    },
    QualityCheck: {
        "description": "",
        "severity": "error",
        "enabled": True,
        "webhook_url": "",
        "alert_channels": [],
    },
}


def _upsert(model, definition: dict[str, Any], *, reset: bool) -> tuple[bool, bool]:
    name = definition["name"]
    existing = model.objects.filter(name=name).first()
    if existing is not None and not reset:
        return False, False
    row = existing or model(name=name)
    for key, value in {**_BASE[model], **definition}.items():
        setattr(row, key, value)
    row.full_clean()
    row.save()
    return existing is None, existing is not None


@transaction.atomic
def defaults_load(*, reset: bool = False) -> DefaultsLoaded:
    """Create the default rules and checks; idempotent. (The beat entry that runs checks is
    CELERY_BEAT_SCHEDULE["quality-run-scheduled"] in settings.)"""
    counts = {"rules": [0, 0], "checks": [0, 0]}
    for kind, model, definitions in (
        ("rules", QualityRule, DEFAULT_RULES),
        ("checks", QualityCheck, DEFAULT_CHECKS),
    ):
        for definition in definitions:
            created, updated = _upsert(model, definition, reset=reset)
            counts[kind][0] += created
            counts[kind][1] += updated
    if any(counts["rules"]):
        rule_set_bump()
    return DefaultsLoaded(
        rules_created=counts["rules"][0],
        rules_updated=counts["rules"][1],
        checks_created=counts["checks"][0],
        checks_updated=counts["checks"][1],
    )
