"""The events partitions as PostgreSQL lists them (pg_inherits and each partition's bound)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection

from analytics_site.sql import is_postgres
from events.partitioning.bounds import TABLE

# A partition's bound reads "FOR VALUES FROM ('…') TO ('…')", MINVALUE/MAXVALUE unquoted, or
# DEFAULT; the quoted values are timestamps in the session's time zone, cast back here.
PARTITIONS_SQL = """
SELECT child.relname,
       substring(pg_get_expr(child.relpartbound, child.oid) FROM 'FROM \\(''([^'']+)''\\)')
           ::timestamptz,
       substring(pg_get_expr(child.relpartbound, child.oid) FROM 'TO \\(''([^'']+)''\\)')
           ::timestamptz,
       pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT'
FROM pg_inherits
JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
JOIN pg_class child ON child.oid = pg_inherits.inhrelid
WHERE parent.relname = %s AND parent.relnamespace = 'public'::regnamespace
ORDER BY 2 NULLS FIRST, 1
"""


@dataclass(frozen=True)
class EventPartition:
    """One partition: rows with start <= received_at < end (None: unbounded)."""

    name: str
    start: dt.datetime | None
    end: dt.datetime | None
    is_default: bool = False


def events_table_is_partitioned() -> bool:
    if not is_postgres():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind FROM pg_class WHERE relname = %s "
            "AND relnamespace = 'public'::regnamespace",
            [TABLE],
        )
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def event_partitions() -> list[EventPartition]:
    """The partitions of the events table, oldest first, the default one last; [] when the
    table is not partitioned (SQLite)."""
    if not is_postgres():
        return []
    with connection.cursor() as cursor:
        cursor.execute(PARTITIONS_SQL, [TABLE])
        rows = cursor.fetchall()
    partitions = [
        EventPartition(name, start, end, bool(default)) for name, start, end, default in rows
    ]
    return sorted(partitions, key=lambda partition: partition.is_default)
