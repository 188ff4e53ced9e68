"""A hash index for the raw tail's lookups of rolled-up user keys (PostgreSQL only).

A read with a raw tail looks up every tail user's key, one index probe each
(reports.selectors.tail_summary). An equality probe on a hash index touches a bucket page instead
of descending a B-tree of text keys: at 10M events (500k users), 5,000 probes took 8.9 ms
instead of 14.9 ms. Folds pay one more index entry per new user only (a user's row is
inserted once; moving its first_seen changes no indexed column). Sessions keep their B-tree:
a tail has several events per session, so fewer probes, and folds update session rows all the
time. The unique B-tree stays (uniqueness, folds' ON CONFLICT). SQLite (the demo) has no hash
indexes.
"""

from django.db import migrations

INDEXES = (("reports_userfirstseen_user_id_hash", "reports_userfirstseen", "user_id"),)


def indexes_create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, column in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING hash ({column})")


def indexes_drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0007_product_totals_weekly"),
    ]

    operations = [migrations.RunPython(indexes_create, indexes_drop)]
