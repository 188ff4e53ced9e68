"""Migration 0016 (ADR 0041) on a partitioned events table: the two new columns are nullable
without a default, so no partition is rewritten (each keeps its file), and the batches' text
column is lz4-compressed."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import EventFactory

pytestmark = pytest.mark.usefixtures("require_postgres")

BEFORE = [("events", "0015_event_hot_indexes")]
AFTER = [("events", "0016_event_originals_once_per_request")]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _files() -> dict[str, int]:
    """Every events table partition (and the parent) by name, with its file number."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relfilenode FROM pg_class WHERE oid = 'events_event'::regclass "
            "OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = "
            "'events_event'::regclass)"
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_the_new_columns_rewrite_no_partition():
    EventFactory.create_batch(3)  # rows in a partition: a rewrite would give it a new file
    try:
        _migrate(BEFORE)
        before = _files()
        assert len(before) > 1 and any(before.values())
        _migrate(AFTER)
        assert _files() == before
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT attname, attnotnull, atthasdef FROM pg_attribute "
                "WHERE attrelid = 'events_event'::regclass "
                "AND attname IN ('original_batch_id', 'original_line') ORDER BY attname"
            )
            assert cursor.fetchall() == [
                ("original_batch_id", False, False),
                ("original_line", False, False),
            ]
            cursor.execute(
                "SELECT attcompression FROM pg_attribute WHERE attrelid = "
                "'events_originalbatch'::regclass AND attname = 'messages'"
            )
            assert cursor.fetchall() == [("l",)]
            cursor.execute("SELECT count(*) FROM events_event WHERE original_batch_id IS NULL")
            assert cursor.fetchone() == (3,)
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
