"""Originals stored once per insert (ADR 0041): a translated batch's messages are one
OriginalBatch row (lz4), each event pointing at its line, its own column left null; resends,
replays (own received_at) and the switch keep the per-row column; every reader (the accessor,
admin, exports, /events/recent, rule samples) resolves both kinds, a batch read once."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.export_selectors import EventFilters, events_recent_filtered
from events.models import Event
from events.original_selectors import event_original
from events.selectors import RECENT_FIELDS
from events.services import events_insert
from quality.selectors.stored_events import events_sample
from tests.factories import protocol_batch_store
from tests.helpers import user_with_role

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres")]


def _sql(query: str, params: tuple = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def test_a_translated_batch_stores_its_originals_once_and_events_point_at_their_lines():
    """One row for the batch, its text the messages' compact JSON one per line (a newline
    inside a string stays escaped); the events' own column is null."""
    ids = protocol_batch_store(["u-a", "u-b", "u-c"])
    [(batch_id, messages, compression)] = _sql(
        "SELECT id, messages, pg_column_compression(messages) FROM events_originalbatch"
    )
    lines = messages.split("\n")
    assert [json.loads(line)["messageId"] for line in lines] == ["m-0-u-a", "m-1-u-b", "m-2-u-c"]
    assert json.loads(lines[0])["note"] == "a\nb"
    stored = _sql(
        "SELECT id, original IS NULL, original_batch_id, original_line FROM events_event "
        "ORDER BY original_line"
    )
    assert stored == [(pk, True, batch_id, line) for line, pk in enumerate(ids, start=1)]
    # lz4 where the server has it (short texts are not compressed at all: NULL)
    assert compression in (None, "lz4")
    assert _sql(
        "SELECT attcompression FROM pg_attribute WHERE attrelid = "
        "'events_originalbatch'::regclass AND attname = 'messages'"
    ) == [("l",)]
    assert event_original(Event.objects.get(pk=ids[1]))["messageId"] == "m-1-u-b"


def test_a_resent_batch_stores_no_second_row():
    """Every event a duplicate: no event is new, so no OriginalBatch row either."""
    at = timezone.now()
    ids = protocol_batch_store(["u-a"], received_at=at)
    row = Event.objects.values().get(pk=ids[0])
    row.pop("id"), row.pop("txid"), row.pop("original_batch_id"), row.pop("original_line")
    row["original"] = {"again": True}
    assert events_insert([row]) == {}
    assert _sql("SELECT count(*) FROM events_originalbatch") == [(1,)]


def test_rows_with_their_own_receipt_time_and_the_switch_keep_the_column(settings):
    """A replay's rows keep their received_at, so their originals stay per row; so do all with
    INGEST_ORIGINALS_ONCE off."""
    ids = protocol_batch_store(["u-a"])
    row = Event.objects.values().get(pk=ids[0])
    for name in ("id", "txid", "original_batch_id", "original_line"):
        row.pop(name)
    older = row["received_at"] - dt.timedelta(days=1)
    replayed = [
        {**row, "event_id": "00000000-0000-4000-8000-000000000001", "original": {"r": 1}},
        {
            **row,
            "event_id": "00000000-0000-4000-8000-000000000002",
            "received_at": older,
            "original": {"r": 2},
        },
    ]
    events_insert(replayed)
    settings.INGEST_ORIGINALS_ONCE = False
    protocol_batch_store(["u-off"])
    assert _sql("SELECT count(*) FROM events_originalbatch") == [(1,)]
    kept = _sql(
        "SELECT original::text FROM events_event WHERE original_batch_id IS NULL ORDER BY id"
    )
    assert [json.loads(text) for (text,) in kept] == [
        {"r": 1},
        {"r": 2},
        {"messageId": "m-0-u-off", "userId": "u-off", "note": "a\nb"},
    ]


def _both_kinds(settings) -> dict[str, int]:
    """Two batches of two events stored once, and one event with its own original."""
    ids = protocol_batch_store(["u-a", "u-b"]) + protocol_batch_store(["u-c", "u-d"])
    settings.INGEST_ORIGINALS_ONCE = False
    ids += protocol_batch_store(["u-e"])
    settings.INGEST_ORIGINALS_ONCE = True
    return dict(zip(["u-a", "u-b", "u-c", "u-d", "u-e"], ids, strict=True))


def _expected(user: str, n: int) -> dict:
    return {"messageId": f"m-{n}-{user}", "userId": user, "note": "a\nb"}


EXPECTED = {
    "u-a": _expected("u-a", 0),
    "u-b": _expected("u-b", 1),
    "u-c": _expected("u-c", 0),
    "u-d": _expected("u-d", 1),
    "u-e": _expected("u-e", 0),
}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_exports_hold_every_original_reading_each_batch_once(settings, tmp_path, fmt):
    """The export's file has each event's original whichever way it was stored; an export
    batch reads the OriginalBatch rows it needs in one query (not one per event)."""
    _both_kinds(settings)
    out = tmp_path / f"all.{fmt}"
    with CaptureQueriesContext(connection) as queries:
        call_command("export_events", format=fmt, out=str(out), batch_rows=100)
    batch_reads = [q for q in queries if "events_originalbatch" in q["sql"]]
    assert len(batch_reads) == 1
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        for row in rows:
            row["original"] = json.loads(row["original"])
    else:
        rows = pq.read_table(out).to_pylist()
        for row in rows:
            row["original"] = json.loads(row["original"])
    assert {row["user_id"]: row["original"] for row in rows} == EXPECTED
    assert "original_batch_id" not in rows[0]


def test_recent_events_and_rule_samples_resolve_originals(settings):
    _both_kinds(settings)
    recent = events_recent_filtered(EventFilters(), RECENT_FIELDS, limit=10)
    assert {row["user_id"]: row["original"] for row in recent} == EXPECTED
    sample = events_sample(10)
    assert {row["user_id"]: row["original"] for row in sample} == EXPECTED
    assert "original_batch_id" not in sample[0]


def test_admin_event_page_shows_the_original_from_its_batch(settings, client):
    ids = _both_kinds(settings)
    client.force_login(user_with_role("Admin", username="ops"))
    for user in ("u-b", "u-e"):
        page = client.get(f"/admin/events/event/{ids[user]}/change/")
        assert page.status_code == 200
        assert f"m-{1 if user == 'u-b' else 0}-{user}" in page.content.decode()
