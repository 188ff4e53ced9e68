"""The migration that partitions events_event (ADR 0021) keeps every row exactly once, with
every column and id, makes the old table the first partition, claims every stored event_id
(a resend stays a duplicate), and hands out ids after the old ones."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from events.models import Event
from events.services import DUPLICATE, IngestSource, event_batch_ingest
from tests.factories import event_payload

pytestmark = pytest.mark.usefixtures("require_postgres")

BEFORE = [("events", "0010_ingestionkey_public_kind_origins")]
AFTER = [("events", "0011_event_partitions_by_received_at")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM events_event ORDER BY id")
        return cursor.fetchall()


def _relkind() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'events_event'")
        return cursor.fetchone()[0]


def _fill(apps) -> None:
    old = apps.get_model("events", "Event")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    old.objects.bulk_create(
        old(
            event_id=uuid.uuid4(),
            event_type="page_view",
            timestamp=start + dt.timedelta(hours=7 * n),
            client_timestamp=start + dt.timedelta(hours=7 * n),
            received_at=start + dt.timedelta(hours=7 * n, seconds=n % 5),
            user_id=f"u{n % 17}",
            session_id=f"s{n % 40}",
            device_type="mobile",
            country="FR",
            properties={"n": n},
        )
        for n in range(3000)
    )
    old.objects.filter(pk__in=list(old.objects.values_list("pk", flat=True)[:10])).delete()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prepared", [False, True], ids=["migrate-only", "prepared-live"])
def test_fill_migrate_compare(prepared):
    """With `events_partitions prepare` first (the live runbook), rows written between the
    preparation and the migration are kept and claimed too."""
    try:  # whatever fails, the database is left at the latest migration for later tests
        apps = _migrate(BEFORE)
        assert _relkind() == "r"
        _fill(apps)
        if prepared:
            call_command("events_partitions", "prepare", "--batch", "700", stdout=io.StringIO())
            _fill(apps)  # the live system goes on writing
        before = _rows()
        _migrate(AFTER)
        assert _relkind() == "p"
        assert _rows() == before  # every row, every column, once
        with connection.cursor() as cursor:
            cursor.execute("SELECT tableoid::regclass::text, count(*) FROM events_event GROUP BY 1")
            assert dict(cursor.fetchall()) == {"events_event_legacy": len(before)}
            cursor.execute(
                "SELECT count(*) FROM events_event e WHERE NOT EXISTS "
                "(SELECT 1 FROM events_eventkey k WHERE k.event_id = e.event_id)"
            )
            assert cursor.fetchone()[0] == 0  # every stored event_id is claimed
        # Today's model (later migrations add columns) stores and reads from here on.
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        resent = event_payload(event_id=str(before[500][1]))
        fresh = event_payload()
        outcomes = event_batch_ingest([resent, fresh], source=IngestSource(key_id=None))
        assert outcomes[0].status == DUPLICATE and outcomes[1].status != DUPLICATE
        assert Event.objects.get(event_id=fresh["event_id"]).pk > before[-1][0]
        assert Event.objects.count() == len(before) + 1
    finally:
        Event.objects.all().delete()
        _migrate(BEFORE)  # back to an empty plain table, then forward: no legacy partition
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
