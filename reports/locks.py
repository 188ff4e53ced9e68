"""Advisory locks that order the rollup writers and readers (issue 14: a rebuild deadlocked
with the running worker).

Two transaction-scoped PostgreSQL advisory locks, always taken in this order:
1. ROLLUP_WRITE: every fold batch, the stored-behind fold and the rebuild take it exclusively
   before the watermark row, so a rebuild and a fold never interleave their table locks.
2. ROLLUP_TABLES: a dashboard snapshot takes it shared before reading rollup tables; the full
   rebuild takes it exclusively before TRUNCATE. TRUNCATE locks the tables one after another,
   so without it a snapshot that has read table B and next reads table A (already truncated,
   not yet committed) waits on the rebuild while the rebuild waits on B: a deadlock.
Other databases (SQLite) serialize writers anyway: the helpers do nothing there.
"""

from __future__ import annotations

from analytics_site.sql import is_postgres, sql_execute

ROLLUP_WRITE = 4_014_001
ROLLUP_TABLES = 4_014_002


def rollup_write_lock() -> None:
    """Exclusive until the end of the current transaction."""
    if is_postgres():
        sql_execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_WRITE])


def rollup_tables_lock(*, shared: bool) -> None:
    """Shared for readers, exclusive for the rebuild's TRUNCATE; until the transaction ends."""
    if is_postgres():
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        sql_execute(f"SELECT {function}(%s)", [ROLLUP_TABLES])
