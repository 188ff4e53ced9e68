"""Cheaper index inserts for the events table (ADR 0040): the id-like text columns in the "C"
collation, and no deduplication attempts in the indexes whose keys are (nearly) unique.

- Collation: the B-tree indexes on event_type, session_id and user_id compared with the
  database's collation; on a C.UTF-8 (or en_US) database PostgreSQL 15 does not treat that as
  "C", so every comparison of an index insert went through strcoll. In "C" it is a memcmp. For
  UTF-8 text "C" (byte order) and C.UTF-8 (code point order) sort alike, and equality is byte
  equality in both: no query's answer changes on a C.UTF-8 database.
- deduplicate_items = off: before splitting a full leaf page a B-tree first tries to merge
  duplicates; in (txid, id), (session_id, timestamp) and (event_type, timestamp) there are
  (almost) none, so every attempt is wasted work.

Changing a column's collation rebuilds its indexes under an ACCESS EXCLUSIVE lock, which on a
large partitioned table stops ingestion for minutes, and a partitioned index's storage
parameters cannot be altered. So `indexes_prepare` first builds, CONCURRENTLY, the new form of
each index on each partition, beside the old one; then `indexes_swap` drops the parent's old
indexes (and with them the partitions' old ones), changes the columns (the type stays: no table
rewrite), and re-creates the parent's indexes, for which PostgreSQL attaches the prepared copies
instead of building: only the catalog changes under the lock. New partitions take the parent's
form. A partition made between the two steps gets its index built then (it is small).

Used by migration 0015: keep what it does stable; change it with a new migration.
"""

from __future__ import annotations

from events.partitioning.bounds import TABLE
from events.partitioning.catalog import PARTITIONS_SQL

COLLATED_COLUMNS = ("event_type", "session_id", "user_id")
_COLUMN_TYPE = "varchar(128)"
_NO_DEDUP = " WITH (deduplicate_items = off)"

# The indexes re-created: name, columns, deduplicate. Partial indexes cannot be attached across
# a collation change (PostgreSQL rebuilds them), so anonymous_id and order_id keep the
# database's collation; few rows enter their indexes.
SWAPPED_INDEXES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("event_type_ts_idx", ("event_type", "timestamp"), False),
    ("event_session_ts_idx", ("session_id", "timestamp"), False),
    ("event_user_idx", ("user_id",), True),  # a person's events: duplicates worth merging
    ("event_txid_idx", ("txid", "id"), False),
)


def _definition(columns: tuple[str, ...], dedup: bool, *, collate: bool) -> str:
    names = ", ".join(
        f'"{name}" COLLATE "C"' if collate and name in COLLATED_COLUMNS else f'"{name}"'
        for name in columns
    )
    return f"({names})" + ("" if dedup else _NO_DEDUP)


def _prepared_name(partition: str, index: str) -> str:
    return f"{partition}_{index}_c"[:63]


def _relkind(cursor, name: str) -> str | None:
    cursor.execute(
        "SELECT relkind FROM pg_class WHERE relname = %s AND relnamespace = 'public'::regnamespace",
        [name],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def indexes_swapped(cursor) -> bool:
    """Whether `indexes_swap` ran: the columns are "C" and the fold-order index has no
    deduplication."""
    cursor.execute(
        "SELECT c.collname = 'C' FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation "
        "WHERE a.attrelid = %s::regclass AND a.attname = %s",
        [TABLE, COLLATED_COLUMNS[0]],
    )
    collated = cursor.fetchone()
    cursor.execute(
        "SELECT 'deduplicate_items=off' = ANY(reloptions) FROM pg_class "
        "WHERE oid = to_regclass(%s)",
        [SWAPPED_INDEXES[-1][0]],
    )
    tuned = cursor.fetchone()
    return bool(collated and collated[0] and tuned and tuned[0])


def indexes_prepare(cursor) -> int:
    """Build the new form of each index on every partition, CONCURRENTLY (the cursor must be in
    autocommit). Idempotent: a copy left invalid by an interrupted build is built again.
    Returns the number of indexes built."""
    if _relkind(cursor, TABLE) != "p" or indexes_swapped(cursor):
        return 0
    cursor.execute(PARTITIONS_SQL, [TABLE])
    partitions = [row[0] for row in cursor.fetchall()]
    built = 0
    for partition in partitions:
        for index, columns, dedup in SWAPPED_INDEXES:
            name = _prepared_name(partition, index)
            cursor.execute(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name]
            )
            row = cursor.fetchone()
            if row and row[0]:
                continue
            if row:
                cursor.execute(f'DROP INDEX CONCURRENTLY "{name}"')
            definition = _definition(columns, dedup, collate=True)
            cursor.execute(f'CREATE INDEX CONCURRENTLY "{name}" ON "{partition}" {definition}')
            built += 1
    return built


def indexes_swap(cursor) -> None:
    """Drop the parent's old indexes, change the columns to "C" and re-create the indexes,
    which attach the prepared copies (run inside one transaction: the caller's)."""
    if indexes_swapped(cursor):
        return
    _columns_recollated(cursor, '"C"', keep_dedup_setting=True)
    _prepared_renamed(cursor)


def _columns_recollated(cursor, collation: str, *, keep_dedup_setting: bool) -> None:
    """The parent's swapped indexes dropped, the columns given `collation` (same type: no
    table rewrite) and the indexes re-created: with each index's deduplication setting, or
    PostgreSQL's default (on)."""
    for index, _, _ in SWAPPED_INDEXES:
        cursor.execute(f'DROP INDEX IF EXISTS "{index}"')
    changes = ", ".join(
        f'ALTER COLUMN "{name}" TYPE {_COLUMN_TYPE} COLLATE {collation}'
        for name in COLLATED_COLUMNS
    )
    cursor.execute(f"ALTER TABLE {TABLE} {changes}")
    for index, columns, dedup in SWAPPED_INDEXES:
        definition = _definition(columns, dedup or not keep_dedup_setting, collate=False)
        cursor.execute(f'CREATE INDEX "{index}" ON {TABLE} {definition}')


def _prepared_renamed(cursor) -> None:
    """The attached copies take the names PostgreSQL gives a new partition's indexes
    (<partition>_<columns>_idx), which the old ones had: one naming for operators and plans."""
    cursor.execute(PARTITIONS_SQL, [TABLE])
    for partition, *_ in cursor.fetchall():
        for index, columns, _ in SWAPPED_INDEXES:
            prepared, usual = (
                _prepared_name(partition, index),
                f"{partition}_{'_'.join(columns)}_idx",
            )
            cursor.execute("SELECT to_regclass(%s), to_regclass(%s)", [prepared, usual])
            found, taken = cursor.fetchone()
            if found and not taken and len(usual) <= 63:
                cursor.execute(f'ALTER INDEX "{prepared}" RENAME TO "{usual}"')


def indexes_unswap(cursor) -> None:
    """Back to the database's collation and default deduplication (rebuilt under the lock)."""
    _columns_recollated(cursor, '"default"', keep_dedup_setting=False)
