"""Scaling settings block of `analytics_site.settings` (issue 15): the events table's time
partitions (ADR 0021). Imports no app (import-linter contract 5)."""

from typing import Any

import environ

from analytics_site.settings_operations import _beat_entry


def partition_settings(env: environ.Env, *, beat_schedule: dict[str, Any]) -> dict[str, Any]:
    """Events partitioned by received_at on PostgreSQL, one partition per EVENTS_PARTITION_INTERVAL
    (day | month), EVENTS_PARTITIONS_AHEAD intervals created ahead by a periodic task; retention
    drops whole partitions (governance). Changing the interval applies to partitions created
    from then on."""
    interval = env.int("EVENTS_PARTITIONS_MAINTAIN_SECONDS", default=3600)
    return {
        "EVENTS_PARTITION_INTERVAL": env.str("EVENTS_PARTITION_INTERVAL", default="month"),
        "EVENTS_PARTITIONS_AHEAD": env.int("EVENTS_PARTITIONS_AHEAD", default=2),
        # A partition is dropped only if its lock comes within this wait (else: next pass).
        "EVENTS_PARTITION_LOCK_TIMEOUT_MS": env.int(
            "EVENTS_PARTITION_LOCK_TIMEOUT_MS", default=2000
        ),
        "CELERY_BEAT_SCHEDULE": {
            **beat_schedule,
            "events-partitions-maintain": _beat_entry("events.partitions_maintain", interval),
        },
    }
