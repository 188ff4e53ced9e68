"""`manage.py generate_sample_data` against PostgreSQL: what it prints is what it stored, reruns
add nothing, stored rows equal the generated events (binary COPY round trip), the worker-process
path and the portable path store the same, and --stream sends events to a live server."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from events import sample_data as gen
from events.facade import EVENT_COLUMN_NAMES
from events.models import Event, EventKey, RejectedEvent
from events.sample_data import load
from events.sample_data.load import sample_data_load
from events.schema import validate_event_schema
from events.services import store

END = "2026-01-15T12:00:00+00:00"
END_DT = dt.datetime.fromisoformat(END)


def _run(**options) -> str:
    out = io.StringIO()
    values = {"events": 3000, "seed": 7, "end": END_DT, "quiet": True, "stdout": out}
    values.update(options)
    call_command("generate_sample_data", **values)
    return out.getvalue()


def _count(output: str, label: str) -> int:
    match = re.search(rf"^\s+{label}\s+([\d,]+)", output, re.MULTILINE)
    assert match, output
    return int(match.group(1).replace(",", ""))


@pytest.mark.django_db
def test_printed_summary_matches_what_was_stored_and_a_rerun_adds_nothing(require_postgres):
    """accepted == Event rows, rejected == RejectedEvent rows; the same seed again stores
    nothing (good events conflict on event_id, bad ones are known, duplicates stay dupes)."""
    first = _run()
    accepted, rejected = _count(first, "accepted"), _count(first, "rejected")
    assert Event.objects.count() == accepted
    assert RejectedEvent.objects.count() == rejected
    assert 2900 < accepted < 3000
    assert rejected > 0
    assert _count(first, "duplicates") > 0
    assert "events/s" in first

    second = _run()
    assert _count(second, "accepted") == 0
    assert _count(second, "rejected") == 0
    assert Event.objects.count() == accepted
    assert RejectedEvent.objects.count() == rejected


@pytest.mark.django_db
def test_a_rerun_with_a_later_end_adds_nothing_either(require_postgres):
    """Ids and bad/duplicate fates depend on the seed, so `make demo` twice does not double."""
    _run(events=2000)
    counts = (Event.objects.count(), RejectedEvent.objects.count())
    _run(events=2000, end=END_DT + dt.timedelta(hours=3, minutes=17))
    assert (Event.objects.count(), RejectedEvent.objects.count()) == counts


@pytest.mark.django_db
def test_stored_rows_equal_the_generated_events(require_postgres):
    """Every good generated event is stored exactly as the schema layer would store it from
    its payload (binary COPY encoding: uuid, timestamps, numerics, json), with its arrival
    time; re-sent duplicates are stored once."""
    config = gen.SampleConfig(events=2500, end=END_DT, seed=3)
    summary = sample_data_load(config, workers=1)
    stored = {str(row["event_id"]): row for row in Event.objects.values()}
    good = [e for e in gen.sample_events(config) if e.is_good and not e.duplicate]
    assert len(stored) == summary.accepted >= len(good)
    fields = [name for name in EVENT_COLUMN_NAMES if name not in ("received_at", "warnings")]
    for event in good:
        received_at = dt.datetime.fromtimestamp(event.received_ms / 1000, tz=dt.UTC)
        expected = validate_event_schema(
            event.payload, received_at=received_at, max_future_skew=dt.timedelta(minutes=5)
        ).row
        row = stored[event.payload["event_id"]]
        # Columns the store fills in itself (`derived`, `source`, ...) are not the schema's.
        shared = [f for f in fields if f in expected]
        assert len(shared) >= len(fields) - 4, sorted(set(fields) - set(shared))
        assert {f: row[f] for f in shared} == {f: expected[f] for f in shared}, event.payload
        assert row["received_at"] == received_at
        assert row["warnings"] == []


@pytest.mark.django_db
def test_bad_events_are_quarantined_with_reasons_naming_their_field(require_postgres):
    config = gen.SampleConfig(events=4000, end=END_DT, seed=5, bad_rate=0.05)
    summary = sample_data_load(config, workers=1)
    planted = {
        (e.payload.get("event_id") or ""): e.kind
        for e in gen.sample_events(config)
        if e.kind and not e.rule_only
    }
    assert sum(summary.rejected_by_kind.values()) >= len(planted) > 100
    rejected = {row.event_id: row for row in RejectedEvent.objects.all()}
    for event_id, kind in planted.items():
        row = rejected[event_id]
        fields = {reason["field"] for reason in row.reasons}
        assert gen.BAD_KIND_BY_NAME[kind].field in fields | {""}, (kind, row.reasons)
        assert row.payload["event_id"] == event_id
    # Quarantine times follow the traffic, not the moment the command ran.
    times = RejectedEvent.objects.values_list("received_at", flat=True)
    assert min(times) < END_DT - dt.timedelta(days=5)
    assert max(times) <= END_DT


@pytest.mark.django_db(transaction=True)
def test_worker_processes_store_the_same_as_one_process(require_postgres):
    """Two worker processes with their own connections (committing per chunk) store exactly
    the events one process stores, for the same config."""
    config = gen.SampleConfig(events=6000, end=END_DT, seed=9, chunk_events=1500)
    parallel = sample_data_load(config, workers=2)
    ids_parallel = set(Event.objects.values_list("event_id", flat=True))
    rejected_parallel = RejectedEvent.objects.count()
    Event.objects.all().delete()
    RejectedEvent.objects.all().delete()
    EventKey.objects.all().delete()  # keys outlive their events (ADR 0021): a fresh store
    single = sample_data_load(config, workers=1)
    assert set(Event.objects.values_list("event_id", flat=True)) == ids_parallel
    assert RejectedEvent.objects.count() == rejected_parallel == single.rejected
    assert (parallel.accepted, parallel.duplicates) == (single.accepted, single.duplicates)
    assert parallel.accepted == len(ids_parallel)


def _stored_rows() -> dict[str, dict]:
    return {str(row["event_id"]): row for row in Event.objects.values(*EVENT_COLUMN_NAMES)}


@pytest.mark.django_db
def test_portable_path_stores_the_same_rows_as_copy(require_postgres, monkeypatch):
    """The SQLite path (rows by the schema layer, events_insert) stores the same rows, every
    column, as the COPY path; run here on PostgreSQL with the PostgreSQL branches of the loader
    and of the insert switched off, as the shared SQLite file is off-limits."""
    config = gen.SampleConfig(events=1500, end=END_DT, seed=4)
    copied = sample_data_load(config, workers=1)
    by_copy = _stored_rows()
    Event.objects.all().delete()
    RejectedEvent.objects.all().delete()
    EventKey.objects.all().delete()  # keys outlive their events (ADR 0021): a fresh store
    for module in (load, store):
        monkeypatch.setattr(module, "is_postgres", lambda: False)
    portable = sample_data_load(config, workers=1)
    monkeypatch.undo()
    assert _stored_rows() == by_copy
    assert portable.rejected == copied.rejected


@pytest.mark.django_db
def test_end_in_the_future_is_refused(require_postgres):
    with pytest.raises(CommandError, match="future"):
        _run(end=timezone.now() + dt.timedelta(hours=1))


@pytest.mark.django_db
def test_demo_setup_call_keeps_working(require_postgres):
    """demo_setup calls call_command("generate_sample_data", events=..., seed=...)."""
    call_command("generate_sample_data", events=500, seed=1, quiet=True, stdout=io.StringIO())
    assert Event.objects.count() > 480
    newest = Event.objects.order_by("-timestamp").values_list("timestamp", flat=True)[0]
    assert newest <= timezone.now()
    assert Event.objects.filter(revenue__gt=Decimal(0)).exists() or Event.objects.count() < 600


@pytest.mark.django_db
def test_demo_setup_leaves_a_login_data_rollups_and_check_runs(client):
    """What `make demo` runs before the server: the printed login works, the sample is stored
    and rolled up, checks have run, and the printed address uses the server's port."""
    from quality.models import CheckRun
    from reports.models import RollupWatermark

    out = io.StringIO()
    call_command("demo_setup", events=400, seed=3, port=8123, stdout=out)
    assert "http://localhost:8123/" in out.getvalue()
    signed_in = client.post(
        "/accounts/login/", {"username": "demo", "password": "demo-analytics"}
    )  # through the form: the login throttle needs the request
    assert signed_in.status_code == 302 and "_auth_user_id" in client.session
    assert Event.objects.count() > 350
    assert RollupWatermark.objects.get().events_rolled_up == Event.objects.count()
    assert CheckRun.objects.exists()
    call_command("demo_setup", events=400, seed=3, stdout=io.StringIO())  # rerun: no new events
    assert RollupWatermark.objects.get().events_rolled_up == Event.objects.count()


@pytest.mark.parametrize("batch_size", [1, 10])
def test_stream_sends_events_to_a_live_server(require_postgres, dev_mode, live_server, batch_size):
    """--stream posts generated events to the HTTP API (single or batch) and stops by itself;
    what the server stored matches the printed counts."""
    out = io.StringIO()
    call_command(
        "generate_sample_data",
        stream=True,
        rate=50,
        duration=1,
        url=live_server.url,
        batch_size=batch_size,
        seed=2,
        bad_rate=0.05,
        stdout=out,
    )
    output = out.getvalue()
    match = re.search(
        r"done: sent (\d+) in [\d.]+ s; accepted (\d+), duplicates (\d+), rejected (\d+), "
        r"errors (\d+)",
        output,
    )
    assert match, output
    sent, accepted, duplicates, rejected, errors = map(int, match.groups())
    assert errors == 0, output
    # 50 events are due within the second; a slow test server may take fewer of them.
    assert 0 < sent <= 50
    assert sent == accepted + duplicates + rejected
    assert Event.objects.count() == accepted > 0
    assert RejectedEvent.objects.count() == rejected
    newest = Event.objects.order_by("-timestamp").values_list("timestamp", flat=True)[0]
    assert abs(newest - timezone.now()) < dt.timedelta(minutes=1)


def test_stream_without_a_seed_sends_new_events_after_the_default_load(
    require_postgres, dev_mode, live_server
):
    """After `make demo` (seed 42), `--stream` with no --seed must send new traffic, not the
    loaded events' ids again (the server would call them all duplicates)."""
    call_command("generate_sample_data", events=300, quiet=True, stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "generate_sample_data", stream=True, rate=40, duration=1, url=live_server.url, stdout=out
    )
    match = re.search(
        r"accepted (\d+), duplicates (\d+), rejected (\d+), errors (\d+)", out.getvalue()
    )
    assert match, out.getvalue()
    accepted, duplicates, _rejected, errors = map(int, match.groups())
    assert errors == 0 and accepted > 0
    assert duplicates <= accepted // 4  # only the generator's own re-sends, if any
