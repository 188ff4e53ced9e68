"""The ingestion benchmark's reference (benchmarks/ingest.py): binary COPY of the same event
shape into the same table, the ceiling the HTTP rates are compared with.

The columns and their types come from `events.facade.EVENT_COLUMNS`, the one list of stored
event columns, so Django is set up (only to import it: no query goes through Django here).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
os.environ.setdefault("ENVIRONMENT", "development")  # importing the models needs no SECRET_KEY

import django  # noqa: E402

django.setup()

from benchmarks._ingest_mix import MIXES, OFFSETS  # noqa: E402
from benchmarks._ingest_server import database_url  # noqa: E402
from events.facade import EVENT_COLUMNS, EVENTS_TABLE  # noqa: E402


def _copy_row(mix: str, index: int, now: dt.datetime) -> tuple:
    """One stored row of the mix's event `index`, in the order of EVENT_COLUMNS."""
    event = MIXES[mix](index)
    event_id = uuid.uuid4()
    if event.get("order_id") == "@OR@":
        event["order_id"] = f"ord-{event_id.hex[:16]}"
    price, revenue = event.get("price"), event.get("revenue")
    timestamp = now - dt.timedelta(seconds=OFFSETS[mix](index))
    values = {
        "event_id": event_id,
        "timestamp": timestamp,
        "client_timestamp": timestamp,
        "received_at": now,
        "price": Decimal(str(price)) if price is not None else None,
        "quantity": event.get("quantity"),
        "revenue": Decimal(str(revenue)) if revenue is not None else None,
        "properties": Jsonb(event.get("properties", {})),
        "warnings": Jsonb([]),
        "derived": Jsonb([]),
        "source": "api",
        "original": None,
        "client_ip": None,
    }
    return tuple(
        values[name] if name in values else event.get(name, "") for name, _ in EVENT_COLUMNS
    )


def copy_rate(db_name: str, rows: int, chunk: int, mix: str = "light") -> float:
    """Rows/s of binary COPY of the same event shape into events_event (row building excluded).

    Loaded in chunks of `chunk` rows, each its own COPY and commit, like the HTTP batches."""
    now = dt.datetime.now(dt.UTC)
    prepared = [_copy_row(mix, index, now) for index in range(rows)]
    names = ", ".join(f'"{name}"' for name, _ in EVENT_COLUMNS)
    types = [kind for _, kind in EVENT_COLUMNS]
    with psycopg.connect(database_url(db_name)) as conn:
        began = time.perf_counter()
        for start in range(0, rows, chunk):
            statement = f"COPY {EVENTS_TABLE} ({names}) FROM STDIN (FORMAT BINARY)"
            with conn.cursor() as cursor, cursor.copy(statement) as cp:
                cp.set_types(types)
                for row in prepared[start : start + chunk]:
                    cp.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - began
    return rows / elapsed
