"""Scaling settings blocks of `analytics_site.settings` (issue 15): the events table's time
partitions (ADR 0021) and reads off the primary (ADR 0022). Imports no app (contract 5)."""

import copy
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


def replica_settings(env: environ.Env, *, databases: dict[str, Any]) -> dict[str, Any]:
    """A streaming replica for dashboard, export and API reads (ADR 0022) when
    DATABASE_REPLICA_URL is set: the `replica` alias, with the primary's options (timeouts)
    and a short connect timeout, so a dead replica costs a read little before the primary
    takes over. Tests mirror it onto the default database."""
    databases = copy.deepcopy(databases)
    url = env.str("DATABASE_REPLICA_URL", default="")
    if url:
        replica = env.db_url_config(url)
        replica["CONN_MAX_AGE"] = databases["default"].get("CONN_MAX_AGE", 0)
        replica["CONN_HEALTH_CHECKS"] = True
        replica["OPTIONS"] = {
            **databases["default"].get("OPTIONS", {}),
            **replica.get("OPTIONS", {}),
            "connect_timeout": env.int("DATABASE_REPLICA_CONNECT_TIMEOUT_SECONDS", default=1),
        }
        replica["TEST"] = {"MIRROR": "default"}
        databases["replica"] = replica
    return {
        "DATABASES": databases,
        "DATABASE_REPLICA_MAX_LAG_SECONDS": env.float(
            "DATABASE_REPLICA_MAX_LAG_SECONDS", default=5.0
        ),
        "DATABASE_REPLICA_CHECK_SECONDS": env.float("DATABASE_REPLICA_CHECK_SECONDS", default=2.0),
    }
