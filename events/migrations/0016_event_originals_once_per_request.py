"""Originals stored once per insert (ADR 0041): the OriginalBatch table, and on the events table
two nullable columns without a default, which PostgreSQL adds in its catalog only (no rewrite
of any partition; the lock is held for the catalog change, and given up after
EVENTS_PARTITION_LOCK_TIMEOUT_MS rather than queued behind a long read: migrate again)."""

from django.conf import settings
from django.db import migrations, models


def lock_timeout_set(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    timeout = int(settings.EVENTS_PARTITION_LOCK_TIMEOUT_MS)
    schema_editor.execute(f"SET LOCAL lock_timeout = {timeout}")


def messages_compress_lz4(apps, schema_editor):
    """lz4 where the server was built with it (cheaper to write than pglz), else the default."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    if row and row[0]:
        schema_editor.execute(
            "ALTER TABLE events_originalbatch ALTER COLUMN messages SET COMPRESSION lz4"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0015_event_hot_indexes'),
    ]

    operations = [
        migrations.RunPython(lock_timeout_set, migrations.RunPython.noop),
        migrations.CreateModel(
            name='OriginalBatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('received_at', models.DateTimeField(db_index=True)),
                ('messages', models.TextField()),
            ],
        ),
        migrations.RunPython(messages_compress_lz4, migrations.RunPython.noop),
        migrations.AddField(
            model_name='event',
            name='original_batch_id',
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='event',
            name='original_line',
            field=models.IntegerField(blank=True, editable=False, null=True),
        ),
    ]
