"""The default dataset checks (loaded with the default rules by `quality.services.defaults`).

Tuned on `benchmarks/quality_detection.py`: every planted incident kind caught within two
scheduled runs, at most one false alarm per clean simulated week (ADR 0020).
"""

from __future__ import annotations

from typing import Any

# Hour windows catch an incident within one or two runs; the day windows next to them keep
# the slow leaks (a rate creeping up over the day) in view. Every rate check has a minimum
# count, so a quiet hour is skipped instead of judged on a handful of events (ADR 0020).
_HOUR = {"window_minutes": 60}
DEFAULT_CHECKS: list[dict[str, Any]] = [
    {
        "name": "events-fresh",
        "description": "The newest event is at most 10 minutes old (a 30-minute outage is seen "
        "by the second 5-minute run).",
        "kind": "freshness",
        "params": {},
        "threshold": 10,
        "interval_minutes": 5,
    },
    {
        "name": "volume-last-hour",
        "description": "Events in the last hour vs the same hour on earlier days: same weekday "
        "once 3 weeks exist, else each day scaled by its weekday's level; noise for traffic "
        "that comes in sessions.",
        "kind": "volume_anomaly",
        "params": {
            **_HOUR,
            "baseline_days": 28,
            "min_baseline_days": 3,
            "dispersion": 6,
        },
        "threshold": 4.0,
        "interval_minutes": 15,
        "severity": "warning",
    },
    {
        "name": "purchase-currency-null-rate",
        "description": "Purchases without currency, last 24 hours.",
        "kind": "null_rate",
        "params": {
            "field": "currency",
            "event_types": ["purchase"],
            "window_minutes": 1440,
            "min_events": 50,
        },
        "threshold": 0.01,
        "interval_minutes": 15,
    },
    {
        "name": "product-view-category-null-rate",
        "description": "Product views without category, last 24 hours.",
        "kind": "null_rate",
        "params": {
            "field": "category",
            "event_types": ["product_view"],
            "window_minutes": 1440,
            "min_events": 200,
        },
        "threshold": 0.05,
        "interval_minutes": 15,
        "severity": "warning",
    },
    {
        "name": "product-view-category-null-rate-hour",
        "description": "Product views without category, last hour (at least 100 views).",
        "kind": "null_rate",
        "params": {
            **_HOUR,
            "field": "category",
            "event_types": ["product_view"],
            "min_events": 100,
        },
        "threshold": 0.05,
        "interval_minutes": 15,
        "severity": "warning",
    },
    {
        "name": "duplicate-rate",
        "description": "Same session, type, product and time under different event ids, 24 h.",
        "kind": "duplicate_rate",
        "params": {"window_minutes": 1440, "min_events": 500},
        "threshold": 0.01,
        "interval_minutes": 15,
    },
    {
        "name": "duplicate-rate-hour",
        "description": "Re-sent events under new ids, last hour (at least 200 events).",
        "kind": "duplicate_rate",
        "params": {**_HOUR, "min_events": 200},
        "threshold": 0.01,
        "interval_minutes": 15,
    },
    {
        "name": "device-mix-drift",
        "description": "Device mix of the last 24 h vs the 7 days before (total variation).",
        "kind": "distribution_drift",
        "params": {
            "field": "device_type",
            "window_minutes": 1440,
            "baseline_days": 7,
            "min_events": 500,
        },
        "threshold": 0.15,
        "interval_minutes": 60,
        "severity": "warning",
    },
    {
        "name": "device-mix-drift-hour",
        "description": "Device mix of the last hour vs the 7 days before (at least 300 events).",
        "kind": "distribution_drift",
        "params": {**_HOUR, "field": "device_type", "baseline_days": 7, "min_events": 300},
        "threshold": 0.15,
        "interval_minutes": 15,
        "severity": "warning",
    },
    {
        "name": "event-type-mix-drift",
        "description": "Event-type mix of the last 24 h vs the 7 days before.",
        "kind": "distribution_drift",
        "params": {
            "field": "event_type",
            "window_minutes": 1440,
            "baseline_days": 7,
            "min_events": 500,
        },
        "threshold": 0.15,
        "interval_minutes": 60,
        "severity": "warning",
    },
    {
        "name": "country-vanished",
        "description": "A country expected to send at least 50 events in 30 minutes (same time "
        "of day on the 7 days before) that now sends (almost) none; fails when such countries "
        "carried over 2% of the traffic.",
        "kind": "distribution_drift",
        "params": {
            "window_minutes": 30,
            "field": "country",
            "method": "vanished",
            "same_window": True,
            "baseline_days": 7,
            "min_expected": 50,
            "min_events": 100,
        },
        "threshold": 0.02,
        "interval_minutes": 15,
        "severity": "warning",
    },
    {
        "name": "currency-mix-drift-hour",
        "description": "Currency mix of the last hour vs the 7 days before.",
        "kind": "distribution_drift",
        "params": {**_HOUR, "field": "currency", "baseline_days": 7, "min_events": 100},
        "threshold": 0.15,
        "interval_minutes": 15,
    },
    {
        "name": "price-scale-hour",
        "description": "Mean price of the last hour vs the 7 days before, as a factor either "
        "way: prices sent in cents score 100.",
        "kind": "mean_shift",
        "params": {**_HOUR, "field": "price", "baseline_days": 7, "min_events": 100},
        "threshold": 3.0,
        "interval_minutes": 15,
    },
    {
        "name": "top-user-share-hour",
        "description": "Share of the last hour's events from its busiest user (a bot or a "
        "runaway client); at least 500 events.",
        "kind": "top_share",
        "params": {**_HOUR, "field": "user_id", "min_events": 500},
        "threshold": 0.05,
        "interval_minutes": 15,
        "severity": "warning",
    },
    {
        "name": "late-arrivals-hour",
        "description": "Share of the events received in the last hour that are over an hour "
        "behind their timestamp (a late batch, a stuck forwarder).",
        "kind": "late_share",
        "params": {**_HOUR, "lag_minutes": 60, "min_events": 200},
        "threshold": 0.05,
        "interval_minutes": 15,
        "severity": "warning",
    },
    {
        "name": "purchases-have-checkout",
        "description": "Purchases whose session has no checkout_start, last 3 hours (at least "
        "20 purchases).",
        "kind": "funnel_sanity",
        "params": {"window_minutes": 180, "min_events": 20},
        "threshold": 0.05,
        "interval_minutes": 15,
    },
    {
        "name": "validation-pass-rate",
        "description": "At least 99.5% of events received in the last 7 days pass validation "
        "(the product's SLO; the Data quality page shows it per hour).",
        "kind": "validation_pass_rate",
        "params": {"window_minutes": 10080, "min_events": 1000},
        "threshold": 0.995,
        "interval_minutes": 15,
    },
    {
        "name": "validation-pass-rate-10min",
        "description": "At least 97% of the events received in the last 10 minutes pass "
        "validation (at least 150): a broken release or client shows here by the second run, "
        "long before it moves the 7-day SLO.",
        "kind": "validation_pass_rate",
        "params": {"window_minutes": 10, "min_events": 150},
        "threshold": 0.97,
        "interval_minutes": 5,
    },
]
