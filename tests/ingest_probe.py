"""Run by tests/integration/test_pooler_and_failover.py in a process of its own, whose settings
name PgBouncer or a multi-host DATABASE_URL: sends events through the whole Django stack (test
client: middleware, DRF, the insert) from a few threads for a while, and prints, as JSON, every
answer's status, Retry-After and the event_id each 201 acknowledged.

    python tests/ingest_probe.py SECONDS THREADS
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from events.services import ingestion_key_create  # noqa: E402


def _event() -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat(),
        "user_id": "u1",
        "session_id": "s1",
        "device_type": "desktop",
        "country": "US",
        "page_url": "/",
    }


def _send(bearer: str, until: float, answers: list) -> None:
    client = Client()
    while time.monotonic() < until:
        event = _event()
        try:
            response = client.post(
                "/api/v1/events",
                data=json.dumps(event),
                content_type="application/json",
                HTTP_AUTHORIZATION=bearer,
            )
            answers.append((response.status_code, response.get("Retry-After"), event["event_id"]))
        except Exception as error:  # an exception escaping Django is a 500 to a client
            answers.append((500, None, repr(error)[:200]))
        time.sleep(0.05)
    connection.close()


def main() -> None:
    seconds, threads = float(sys.argv[1]), int(sys.argv[2])
    bearer = f"Bearer {ingestion_key_create(name=f'probe-{uuid.uuid4().hex[:6]}').raw_key}"
    connection.close()
    answers: list = []
    print("sending", flush=True)  # the caller's timeline starts here, after Django's start-up
    until = time.monotonic() + seconds
    workers = [
        threading.Thread(target=_send, args=(bearer, until, answers)) for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps(answers))


main()
