"""Partition events_event by received_at on PostgreSQL, deduplicating through events_eventkey
(ADR 0021). The old table becomes the first partition: no row is copied. On a live system run
`manage.py events_partitions prepare` first (docs/runbooks/events-partitioning.md), and this
migration only changes the catalog. SQLite keeps the plain table."""

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

from events.partitioning import convert


def keys_table_create(apps, schema_editor):
    """IF NOT EXISTS: `events_partitions prepare` may have made it already (live systems)."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(convert.KEYS_TABLE_SQL)
        return
    schema_editor.execute(
        "CREATE TABLE IF NOT EXISTS events_eventkey "
        "(event_id char(32) NOT NULL PRIMARY KEY, received_at datetime NOT NULL)"
    )


def keys_table_drop(apps, schema_editor):
    schema_editor.execute("DROP TABLE IF EXISTS events_eventkey")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        convert.events_table_partition(
            cursor,
            now=timezone.now(),
            interval=settings.EVENTS_PARTITION_INTERVAL,
            ahead=settings.EVENTS_PARTITIONS_AHEAD,
        )


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        convert.events_table_unpartition(cursor)


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0010_ingestionkey_public_kind_origins"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="EventKey",
                    fields=[
                        ("event_id", models.UUIDField(primary_key=True, serialize=False)),
                        ("received_at", models.DateTimeField()),
                    ],
                ),
            ],
            database_operations=[migrations.RunPython(keys_table_create, keys_table_drop)],
        ),
        migrations.RunPython(partition, unpartition),
    ]
