"""Operations settings blocks of `analytics_site.settings`, split out to keep it short (issue 10).

Each function reads its variables from the caller's django-environ `env` and returns the
settings to apply at the point where the block stood, so order and values stay as before.
Dicts it extends (DATABASES, CACHES, CELERY_BEAT_SCHEDULE) come back as updated copies.
Imports no app (import-linter contract 5).
"""

import copy
from typing import Any

import environ


def _beat_entry(task: str, seconds: float) -> dict[str, Any]:
    """A periodic task that expires after one interval, so a stalled beat never piles them up."""
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


def alert_outbox_settings(env: environ.Env, *, beat_schedule: dict[str, Any]) -> dict[str, Any]:
    """Alert outbox (issue 14, ADR 0010).

    Incident alerts are retried with backoff (base doubling up to the max) for the horizon, then
    dead-lettered (admin: Alert outbox, "resend"). The beat's flush delivers what is due.
    A delivery in flight holds its alert for the lease (more than the webhook timeout).
    """
    interval = env.int("ALERT_OUTBOX_INTERVAL_SECONDS", default=15)
    return {
        "ALERT_OUTBOX_HORIZON_HOURS": env.float("ALERT_OUTBOX_HORIZON_HOURS", default=24.0),
        "ALERT_OUTBOX_BACKOFF_BASE_SECONDS": env.float(
            "ALERT_OUTBOX_BACKOFF_BASE_SECONDS", default=5.0
        ),
        "ALERT_OUTBOX_BACKOFF_MAX_SECONDS": env.float(
            "ALERT_OUTBOX_BACKOFF_MAX_SECONDS", default=600.0
        ),
        "ALERT_OUTBOX_INTERVAL_SECONDS": interval,
        "ALERT_OUTBOX_LEASE_SECONDS": env.float("ALERT_OUTBOX_LEASE_SECONDS", default=60.0),
        "CELERY_BEAT_SCHEDULE": {
            **beat_schedule,
            "quality-alert-outbox-flush": _beat_entry("quality.alert_outbox_flush", interval),
        },
    }


def governance_settings(
    env: environ.Env, *, secret_key: str, beat_schedule: dict[str, Any]
) -> dict[str, Any]:
    """Data governance (issue 13): erasure requests and retention (governance app).

    Erasure audit records keep HMAC-SHA256(ERASURE_HASH_KEY, id), never the id. RETENTION_*_DAYS
    is how long each kind of row is kept; 0 keeps it forever (the default: nothing is deleted on
    upgrade). Each delete is one short transaction of at most RETENTION_BATCH_ROWS rows.
    """
    interval = env.int("RETENTION_INTERVAL_SECONDS", default=3600)
    return {
        "ERASURE_HASH_KEY": env.str("ERASURE_HASH_KEY", default=secret_key),
        "ERASURE_BATCH_EVENTS": env.int("ERASURE_BATCH_EVENTS", default=2000),
        "RETENTION_EVENTS_DAYS": env.int("RETENTION_EVENTS_DAYS", default=0),
        "RETENTION_QUARANTINE_DAYS": env.int("RETENTION_QUARANTINE_DAYS", default=0),
        "RETENTION_CHECK_RUNS_DAYS": env.int("RETENTION_CHECK_RUNS_DAYS", default=0),
        "RETENTION_EVENT_MINUTES_DAYS": env.int("RETENTION_EVENT_MINUTES_DAYS", default=0),
        "RETENTION_RESOLVED_INCIDENTS_DAYS": env.int(
            "RETENTION_RESOLVED_INCIDENTS_DAYS", default=0
        ),
        "RETENTION_BATCH_ROWS": env.int("RETENTION_BATCH_ROWS", default=5000),
        "RETENTION_INTERVAL_SECONDS": interval,
        "CELERY_BEAT_SCHEDULE": {
            **beat_schedule,
            "governance-retention-enforce": _beat_entry("governance.retention_enforce", interval),
        },
    }


def operations_settings(
    env: environ.Env,
    *,
    databases: dict[str, Any],
    caches: dict[str, Any],
    redis_url: str,
    beat_schedule: dict[str, Any],
) -> dict[str, Any]:
    """Operations under faults (issue 14; docs/adr/0008-operations-under-faults.md).

    Timeouts: web requests give up sooner than tasks; DB_ROLE (web | worker, set by the Procfile
    and compose; web by default) picks which pair applies to this process. Health probes, Redis
    clients and the broker give up instead of hanging on a black-holed socket; one beat runs at a
    time (a Redis lease, analytics_site.beat) and workers' liveness reaches /metrics.
    """
    databases = copy.deepcopy(databases)
    caches = copy.deepcopy(caches)
    db_role = env.str("DB_ROLE", default="web")
    connect_timeout = env.int("DB_CONNECT_TIMEOUT_SECONDS", default=3 if db_role == "web" else 10)
    statement_timeout = env.int(
        "DB_STATEMENT_TIMEOUT_MS", default=15_000 if db_role == "web" else 600_000
    )
    if databases["default"]["ENGINE"] != "django.db.backends.sqlite3":
        databases["default"].setdefault("OPTIONS", {}).update(
            {
                "connect_timeout": connect_timeout,
                "options": f"-c statement_timeout={statement_timeout}",
                # A server gone silent (network partition) is noticed in about a minute.
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            }
        )
    redis_timeout = env.float("REDIS_SOCKET_TIMEOUT_SECONDS", default=1.0)
    if redis_url:
        caches["default"]["OPTIONS"] = {
            "socket_connect_timeout": redis_timeout,
            "socket_timeout": redis_timeout,
        }
    heartbeat = env.int("WORKER_HEARTBEAT_SECONDS", default=30)
    return {
        "DB_ROLE": db_role,
        "DB_CONNECT_TIMEOUT_SECONDS": connect_timeout,
        "DB_STATEMENT_TIMEOUT_MS": statement_timeout,
        # A client-side deadline on each wait for PostgreSQL (analytics_site/db_deadline.py),
        # installed by the web entry point only: bounds a request stuck on a stalled or
        # black-holed server, which statement_timeout and keepalives cannot. 0 turns it off.
        "DB_CLIENT_TIMEOUT_SECONDS": env.float(
            "DB_CLIENT_TIMEOUT_SECONDS", default=5.0 if db_role == "web" else 0.0
        ),
        # After such a timeout, new connections of that process fail at once for this long
        # instead of each waiting connect_timeout: bounded 503s, no pile-up behind a stall.
        "DB_UNREACHABLE_HOLD_SECONDS": env.float("DB_UNREACHABLE_HOLD_SECONDS", default=2.0),
        "DATABASES": databases,
        "HEALTH_TIMEOUT_SECONDS": env.float("HEALTH_TIMEOUT_SECONDS", default=0.7),
        "REDIS_SOCKET_TIMEOUT_SECONDS": redis_timeout,
        "CACHES": caches,
        # Unacknowledged (acks_late) messages of a dead worker come back after visibility_timeout.
        "CELERY_BROKER_TRANSPORT_OPTIONS": {
            "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=3600),
            "socket_connect_timeout": redis_timeout,
        },
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        # Keep retrying: the supervisor is the last resort.
        "CELERY_BROKER_CONNECTION_MAX_RETRIES": None,
        # kombu's restore of unacked messages crashes the worker when Redis drops.
        "CELERY_REDIS_RESTORE_GUARD": env.bool("CELERY_REDIS_RESTORE_GUARD", default=True),
        "CELERY_BEAT_SCHEDULER": "analytics_site.beat:LeaderDatabaseScheduler",
        "BEAT_LEADER_LEASE_SECONDS": env.int("BEAT_LEADER_LEASE_SECONDS", default=30),
        "CELERY_BEAT_SYNC_EVERY": 1,  # save last run times at once: a new leader starts from them
        "WORKER_HEARTBEAT_SECONDS": heartbeat,
        "CELERY_BEAT_SCHEDULE": {
            **beat_schedule,
            "ops-worker-heartbeat": _beat_entry("analytics_site.worker_heartbeat", heartbeat),
        },
    }
