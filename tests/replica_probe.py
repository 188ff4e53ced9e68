"""Run by tests/integration/test_replica_reads.py in a process of its own, whose settings name a
real primary and replica: prints, as JSON, where a replica_reads() block ran and what the event
stats API and a dashboard page answered."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from analytics_site.replica import replica_reads  # noqa: E402


def _in_recovery() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        return cursor.fetchone()[0]


def main() -> None:
    with replica_reads() as used:
        in_block = _in_recovery()
    user = get_user_model().objects.create_superuser(f"probe-{uuid.uuid4().hex[:8]}", "", "x")
    client = Client()
    client.force_login(user)
    stats = client.get("/api/v1/events/stats")
    page = client.get("/")
    print(
        json.dumps(
            {
                "used": used,
                "in_recovery_in_block": in_block,
                "in_recovery_after": _in_recovery(),
                "stats_status": stats.status_code,
                "total_events": stats.json().get("total_events"),
                "page_status": page.status_code,
            }
        )
    )


main()
