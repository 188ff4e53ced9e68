"""Cheaper index inserts (ADR 0040): event_type, session_id and user_id in the "C" collation,
and the (nearly) unique-keyed indexes without deduplication; the new indexes are built
CONCURRENTLY on each partition first and attached, so on a live table only the catalog changes
under the lock. PostgreSQL only; the Django model does not say it (SQLite has no "C" collation
nor storage parameters): a later AlterField of these columns must keep COLLATE "C" by hand."""

from django.conf import settings
from django.db import migrations, transaction

from events.partitioning import hot_indexes


def indexes_swap(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        hot_indexes.indexes_prepare(cursor)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # Queued behind a long read, the lock would hold every insert up: give up instead
        # (nothing changed; migrate again).
        timeout = int(settings.EVENTS_PARTITION_LOCK_TIMEOUT_MS)
        cursor.execute(f"SET LOCAL lock_timeout = {timeout}")
        hot_indexes.indexes_swap(cursor)


def indexes_unswap(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        hot_indexes.indexes_unswap(cursor)


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY runs outside a transaction.
    atomic = False

    dependencies = [("events", "0014_rejectedevent_source_translation")]

    operations = [migrations.RunPython(indexes_swap, indexes_unswap)]
