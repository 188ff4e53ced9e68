"""The key-claiming trigger skips the rows of a statement that claimed their keys itself (the
ingestion insert, ADR 0027): `WHEN` on a transaction-local setting. Every other insert path
(replays, COPY, the ORM) still claims each key in the trigger. PostgreSQL only."""

from django.db import migrations

from events.partitioning import convert


def trigger_when_unclaimed(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            convert.key_trigger_install(cursor, when_unclaimed=True)


def trigger_every_row(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            convert.key_trigger_install(cursor, when_unclaimed=False)


class Migration(migrations.Migration):
    dependencies = [("events", "0012_event_original_as_json")]

    operations = [migrations.RunPython(trigger_when_unclaimed, trigger_every_row)]
