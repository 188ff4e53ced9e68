"""manage.py export_events / export_quarantine and the admin download: every format holds
exactly the rows raw SQL selects, in batches, with the quarantine's reasons."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from events import export_formats
from events.models import RejectedEvent
from tests.factories import EventFactory, event_payload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres")]

T0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def _events(count: int = 23) -> None:
    for n in range(count):
        EventFactory(
            event_type="purchase" if n % 3 == 0 else "page_view",
            timestamp=T0 + dt.timedelta(hours=n),
            received_at=T0 + dt.timedelta(hours=n // 4),  # ties: the id orders them
            country="DE" if n % 2 else "US",
            price="19.99" if n % 3 == 0 else None,
            properties={"n": n, "tag": "ü"},
        )


def _ids(where: str = "TRUE", params: tuple = ()) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM events_event WHERE {where} ORDER BY timestamp, id", params)  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def _read(path, fmt: str) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(path.read_text())))
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_events_writes_every_filtered_row_once_in_order(tmp_path, fmt, capsys):
    """Batches of 5 over 23 events: the file holds the rows raw SQL selects, in
    (timestamp, id) order, with their values; a progress report goes to stderr."""
    _events()
    out = tmp_path / f"all.{fmt}"
    call_command("export_events", format=fmt, out=str(out), batch_rows=5)
    rows = _read(out, fmt)
    assert [int(row["id"]) for row in rows] == _ids()
    assert not (tmp_path / f"all.{fmt}.partial").exists()
    assert "exported 23 events rows" in capsys.readouterr().err
    first = rows[0]
    props = json.loads(first["properties"]) if fmt != "jsonl" else first["properties"]
    assert props == {"n": 0, "tag": "ü"}
    assert str(first["price"]) == "19.99"
    assert first["event_type"] == "purchase"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_export_events_filters_by_time_type_and_country(tmp_path, fmt):
    _events()
    out = tmp_path / f"some.{fmt}"
    call_command(
        "export_events",
        "--since=2024-05-01T03:00:00Z",
        "--until=2024-05-01T20:00:00",  # no offset: UTC
        "--event-type=purchase",
        "--country=us",
        format=fmt,
        out=str(out),
        batch_rows=2,
        no_progress=True,
    )
    expected = _ids(
        "timestamp >= %s AND timestamp < %s AND event_type = 'purchase' AND country = 'US'",
        (T0 + dt.timedelta(hours=3), T0 + dt.timedelta(hours=20)),
    )
    assert [int(row["id"]) for row in _read(out, fmt)] == expected != []


def test_export_events_by_receipt_time_orders_by_receipt(tmp_path):
    _events()
    out = tmp_path / "received.jsonl"
    call_command(
        "export_events",
        "--time-field=received_at",
        "--since=2024-05-01T01:00",
        out=str(out),
        batch_rows=3,
        no_progress=True,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM events_event WHERE received_at >= %s ORDER BY received_at, id",
            [T0 + dt.timedelta(hours=1)],
        )
        expected = [row[0] for row in cursor.fetchall()]
    assert [row["id"] for row in _read(out, "jsonl")] == expected


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_quarantine_keeps_payloads_and_reasons(dev_mode, api_client, tmp_path, fmt):
    bad = [event_payload(country="Narnia"), event_payload(device_type="tv")]
    for payload in bad:
        assert api_client.post("/events", payload, format="json").status_code == 400
    out = tmp_path / f"q.{fmt}"
    call_command("export_quarantine", format=fmt, out=str(out), no_progress=True)
    rows = _read(out, fmt)
    stored = {r.pk: r for r in RejectedEvent.objects.all()}
    assert [int(row["id"]) for row in rows] == sorted(stored)
    for row in rows:
        reasons = row["reasons"] if fmt == "jsonl" else json.loads(row["reasons"])
        assert reasons == stored[int(row["id"])].reasons != []
        assert row["raw_payload"] == stored[int(row["id"])].raw_payload
    assert {reason["field"] for r in stored.values() for reason in r.reasons} == {
        "country",
        "device_type",
    }


def test_admin_downloads_the_filtered_list_as_a_stream(admin_client):
    """The change list's filters apply to the download (all pages); each format streams."""
    _events()
    page = admin_client.get("/admin/events/event/?event_type__exact=purchase").content.decode()
    assert "export/?event_type__exact=purchase&amp;format=parquet" in page
    for fmt in ("jsonl", "csv", "parquet"):
        response = admin_client.get(
            f"/admin/events/event/export/?event_type__exact=purchase&format={fmt}"
        )
        assert response.status_code == 200 and response.streaming
        assert response["Content-Disposition"].endswith(f'.{fmt}"')
        body = b"".join(response.streaming_content)
        if fmt == "parquet":
            ids = pq.read_table(io.BytesIO(body)).column("id").to_pylist()
        elif fmt == "csv":
            ids = [int(row["id"]) for row in csv.DictReader(io.StringIO(body.decode()))]
        else:
            ids = [json.loads(line)["id"] for line in body.decode().splitlines()]
        assert sorted(ids) == sorted(_ids("event_type = 'purchase'"))


def test_admin_quarantine_download_and_bad_format(admin_client, dev_mode, api_client):
    api_client.post("/events", event_payload(country="Narnia"), format="json")
    response = admin_client.get("/admin/events/rejectedevent/export/?format=jsonl")
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [r["reasons"][0]["field"] for r in rows] == ["country"]
    refused = admin_client.get("/admin/events/rejectedevent/export/?format=xlsx")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "format"


def test_admin_download_refuses_a_filter_the_list_does_not_have(admin_client):
    response = admin_client.get("/admin/events/event/export/?no_such_field=1&format=csv")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "filters"


def test_export_refuses_an_empty_time_range():
    with pytest.raises(CommandError, match="--until must be after --since"):
        call_command("export_events", "--since=2024-02-01", "--until=2024-01-01", "--out=-")


def test_without_pyarrow_parquet_says_how_to_install_it(monkeypatch, tmp_path):
    """pyarrow is optional: the command fails with the install line and leaves no file."""
    monkeypatch.setattr(export_formats, "pa", None)
    with pytest.raises(CommandError, match=r"pip install -r requirements/export\.txt"):
        call_command("export_events", "--format=parquet", f"--out={tmp_path / 'x.parquet'}")
    assert list(tmp_path.iterdir()) == []


def test_admin_download_needs_admin_login(client):
    response = client.get("/admin/events/event/export/?format=csv")
    assert response.status_code == 302 and "/login/" in response["Location"]
