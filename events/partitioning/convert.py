# SQL is built from catalog names and this module's constants; values are bound parameters.
# ruff: noqa: S608
"""Converting a plain events table into one partitioned by received_at, keeping every row.

The rows are not copied: the old table becomes the partition `events_event_legacy` for every
received_at before a bound (the next UTC midnight), and new partitions follow it. Its indexes
become the partitions' share of the parent's indexes (PostgreSQL attaches an equivalent index
instead of building one). Deduplication by event_id moves to the key table `events_eventkey`,
claimed by a BEFORE INSERT trigger on every insert path (ADR 0021).

On a live system `events_table_prepare` does the slow parts first, without blocking writes:
the key table and its trigger, the keys of the stored rows (in batches), the unique index
(id, received_at) and a validated CHECK of the bound. `events_table_partition` (the migration)
then only changes the catalog, under a lock held for well under a second. Without the
preparation it does the same work itself, under the lock (fine for small tables and tests).

Used by the migration: keep what it does stable; change it with a new migration.
"""

from __future__ import annotations

import datetime as dt
import re

from events.partitioning.bounds import (
    DEFAULT_PARTITION,
    LEGACY_PARTITION,
    TABLE,
    day_next,
    interval_floor,
    interval_next,
    missing_ranges,
    partition_name,
)
from events.partitioning.catalog import PARTITIONS_SQL

KEYS_TABLE = "events_eventkey"
KEY_TRIGGER = "events_event_key_claim"
BOUND_CHECK = "events_event_legacy_bound"
LEGACY_PK_INDEX = "events_event_legacy_id_recv"

# Claims the event_id in the key table: a row whose id is already claimed is skipped, as
# ON CONFLICT DO NOTHING would (and RETURNING leaves it out). Concurrent claims of one id wait
# on each other like a unique index. Fires for INSERT and COPY, whoever runs them.
KEY_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {KEY_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {KEYS_TABLE} (event_id, received_at) VALUES (NEW.event_id, NEW.received_at)
    ON CONFLICT (event_id) DO NOTHING;
    IF FOUND THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END
$$
"""
KEYS_TABLE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} "
    "(event_id uuid PRIMARY KEY, received_at timestamptz NOT NULL)"
)


def _one(cursor, sql: str, params=()):
    cursor.execute(sql, params)
    row = cursor.fetchone()
    return None if row is None else row[0]


def _relkind(cursor, name: str) -> str | None:
    return _one(
        cursor,
        "SELECT relkind FROM pg_class WHERE relname = %s AND relnamespace = 'public'::regnamespace",
        [name],
    )


# Set to 'on' (transaction-locally) by the ingestion insert, which claims the keys of its
# rows set-based in the same statement (events.services.store, ADR 0027): the trigger then
# skips that statement's rows instead of claiming each key again in PL/pgSQL. The insert
# resets it when it runs inside a longer transaction; every other insert finds it unset.
KEYS_CLAIMED_SETTING = "events.keys_claimed"


def key_trigger_install(cursor, table: str = TABLE, *, when_unclaimed: bool = True) -> None:
    """The key-claiming trigger; `when_unclaimed` (ADR 0027) lets a statement that claimed its
    keys itself skip it (False: ADR 0021's form, every row claims)."""
    cursor.execute(KEY_FUNCTION_SQL)
    cursor.execute(f"DROP TRIGGER IF EXISTS {KEY_TRIGGER} ON {table}")
    when = (
        f"WHEN (current_setting('{KEYS_CLAIMED_SETTING}', true) IS DISTINCT FROM 'on') "
        if when_unclaimed
        else ""
    )
    cursor.execute(
        f"CREATE TRIGGER {KEY_TRIGGER} BEFORE INSERT ON {table} "
        f"FOR EACH ROW {when}EXECUTE FUNCTION {KEY_TRIGGER}()"
    )


def keys_backfill(cursor, *, after_pk: int = 0, limit: int | None = None) -> int | None:
    """Claim the keys of stored rows with id > after_pk (up to `limit` rows). Returns the last
    id read, or None when there was nothing left."""
    bound = "" if limit is None else f"ORDER BY id LIMIT {int(limit)}"
    cursor.execute(
        f"WITH batch AS (SELECT id, event_id, received_at FROM {TABLE} WHERE id > %s {bound}), "
        f"claimed AS (INSERT INTO {KEYS_TABLE} (event_id, received_at) "
        "SELECT event_id, received_at FROM batch ON CONFLICT (event_id) DO NOTHING) "
        "SELECT max(id) FROM batch",
        [after_pk],
    )
    return cursor.fetchone()[0]


def _bound_from_check(cursor) -> dt.datetime | None:
    comment = _one(
        cursor,
        "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint "
        "WHERE conname = %s AND convalidated",
        [BOUND_CHECK],
    )
    return dt.datetime.fromisoformat(comment) if comment else None


def bound_check_add(cursor, bound: dt.datetime, *, validate: bool = True) -> None:
    """A CHECK (received_at < bound) on the plain table: lets ATTACH skip its scan. NOT VALID
    first, validated apart (which does not block writes); the bound is kept as its comment."""
    cursor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS {BOUND_CHECK}")
    cursor.execute(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {BOUND_CHECK} "
        "CHECK (received_at < %s::timestamptz) NOT VALID",
        [bound],
    )
    cursor.execute(f"COMMENT ON CONSTRAINT {BOUND_CHECK} ON {TABLE} IS %s", [bound.isoformat()])
    if validate:
        cursor.execute(f"ALTER TABLE {TABLE} VALIDATE CONSTRAINT {BOUND_CHECK}")


def _index_definitions(cursor) -> list[tuple[str, str]]:
    """(name, CREATE INDEX …) of the plain table's indexes, but those backing its primary key
    and unique constraints (replaced) and the preparation's helper index."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) "
        "AND i.relname <> %s",
        [TABLE, LEGACY_PK_INDEX],
    )
    return cursor.fetchall()


def _unique_constraints(cursor) -> list[str]:
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        [TABLE],
    )
    return [name for (name,) in cursor.fetchall()]


def partitions_create(cursor, since: dt.datetime, until: dt.datetime, interval: str) -> list[str]:
    """Create the partitions missing in [since, until) while the table is new and idle (the
    conversion); live creation goes through events.services.partitions."""
    cursor.execute(PARTITIONS_SQL, [TABLE])
    existing = [(start, end) for _, start, end, default in cursor.fetchall() if not default]
    names = []
    for start, end in missing_ranges(since, until, existing, interval):
        name = partition_name(start)
        cursor.execute(
            f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)", [start, end]
        )
        names.append(name)
    return names


def events_table_partition(
    cursor, *, now: dt.datetime, interval: str, ahead: int
) -> dict[str, object]:
    """Turn the plain events table into a partitioned one (idempotent: a partitioned table is
    left alone). Run inside a transaction; returns what it did."""
    if _relkind(cursor, TABLE) != "r":
        return {"converted": False}
    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(KEYS_TABLE_SQL)
    prepared = _bound_from_check(cursor)
    if prepared is None:
        keys_backfill(cursor)
    rows = _one(cursor, f"SELECT count(*) FROM {TABLE}") if prepared is None else None
    latest = _one(cursor, f"SELECT max(received_at) FROM {TABLE}")
    keep_legacy = prepared is not None or bool(rows)
    bound = prepared or day_next(max(now, latest) if latest else now)
    if keep_legacy and latest is not None and latest >= bound:
        raise RuntimeError(f"rows received after the prepared bound {bound}: prepare again")

    indexes = _index_definitions(cursor)
    next_id = _one(cursor, "SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [TABLE])
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id DROP IDENTITY IF EXISTS")
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id DROP DEFAULT")
    cursor.execute(f"DROP TRIGGER IF EXISTS {KEY_TRIGGER} ON {TABLE}")
    for name in _unique_constraints(cursor):
        cursor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {name}")
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {LEGACY_PARTITION}")
    cursor.execute(
        f"ALTER TABLE {LEGACY_PARTITION} RENAME CONSTRAINT {TABLE}_pkey TO {LEGACY_PARTITION}_pkey"
    )
    for name, _ in indexes:
        cursor.execute(f"ALTER INDEX {name} RENAME TO {name[:50]}_legacy")

    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {LEGACY_PARTITION} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (received_at)"
    )
    cursor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS {BOUND_CHECK}")
    cursor.execute(f"CREATE SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id START WITH %s", [next_id])
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_seq')")
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, received_at)")
    for _, definition in indexes:
        cursor.execute(definition)  # "ON public.events_event": now the partitioned parent
    key_trigger_install(cursor)

    if keep_legacy:
        if prepared is None:
            cursor.execute(
                f"CREATE UNIQUE INDEX {LEGACY_PK_INDEX} ON {LEGACY_PARTITION} (id, received_at)"
            )
            cursor.execute(
                f"ALTER TABLE {LEGACY_PARTITION} ADD CONSTRAINT {BOUND_CHECK} "
                "CHECK (received_at < %s::timestamptz)",
                [bound],
            )
        # The partition's share of the primary key (id, received_at) is the unique index, made
        # the partition's primary key (ATTACH only adopts an index that backs a constraint; it
        # would build a new one under the lock); the old key on id alone goes.
        cursor.execute(f"ALTER TABLE {LEGACY_PARTITION} DROP CONSTRAINT {LEGACY_PARTITION}_pkey")
        cursor.execute(
            f"ALTER TABLE {LEGACY_PARTITION} ADD CONSTRAINT {LEGACY_PARTITION}_pkey "
            f"PRIMARY KEY USING INDEX {LEGACY_PK_INDEX}"
        )
        cursor.execute(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {LEGACY_PARTITION} "
            "FOR VALUES FROM (MINVALUE) TO (%s)",
            [bound],
        )
        cursor.execute(f"ALTER TABLE {LEGACY_PARTITION} DROP CONSTRAINT {BOUND_CHECK}")
    else:
        cursor.execute(f"DROP TABLE {LEGACY_PARTITION}")
    created = partitions_create(
        cursor, bound if keep_legacy else now, _ahead(now, interval, ahead), interval
    )
    cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    return {"converted": True, "legacy_bound": bound if keep_legacy else None, "created": created}


def _ahead(now: dt.datetime, interval: str, ahead: int) -> dt.datetime:
    point = interval_floor(now, interval)
    for _ in range(ahead + 1):
        point = interval_next(point, interval)
    return point


def events_table_unpartition(cursor) -> None:
    """Back to one plain table (the migration's reverse): copies the rows, so only for small
    tables (tests, a rollback right after the conversion)."""
    if _relkind(cursor, TABLE) != "p":
        return
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname <> %s",
        [TABLE, f"{TABLE}_pkey"],
    )
    indexes = cursor.fetchall()
    next_id = _one(cursor, f"SELECT nextval('{TABLE}_id_seq')")
    cursor.execute(
        f"CREATE TABLE {TABLE}_plain (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE INCLUDING COMMENTS)"
    )
    cursor.execute(f"ALTER TABLE {TABLE}_plain ALTER COLUMN id DROP DEFAULT")
    cursor.execute(f"INSERT INTO {TABLE}_plain SELECT * FROM {TABLE}")
    cursor.execute(f"DROP TABLE {TABLE} CASCADE")
    cursor.execute(f"ALTER TABLE {TABLE}_plain RENAME TO {TABLE}")
    cursor.execute(
        f"ALTER TABLE {TABLE} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH %s)",
        [next_id],
    )
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_event_id_key UNIQUE (event_id)")
    for _, definition in indexes:
        cursor.execute(re.sub(r" ON ONLY ", " ON ", definition))
    cursor.execute(f"DROP FUNCTION IF EXISTS {KEY_TRIGGER}()")


def events_table_prepare(
    connection, *, bound: dt.datetime, batch: int = 50_000, on_batch=None
) -> dict[str, object]:
    """The slow parts of the conversion, on a live plain table, none of them blocking writes
    for long: each step commits on its own (`connection` in autocommit). Safe to run again."""
    with connection.cursor() as cursor:
        if _relkind(cursor, TABLE) != "r":
            return {"prepared": False, "reason": "already partitioned"}
        cursor.execute("SET statement_timeout = 0")  # the index build takes minutes at 50M rows
        cursor.execute(KEYS_TABLE_SQL)
        key_trigger_install(cursor)  # from now on every new row claims its key
        last = 0
        while True:
            read = keys_backfill(cursor, after_pk=last, limit=batch)
            if read is None:
                break
            last = read
            if on_batch:
                on_batch(last)
        cursor.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {LEGACY_PK_INDEX} "
            f"ON {TABLE} (id, received_at)"
        )
        bound_check_add(cursor, bound)
    return {"prepared": True, "bound": bound, "last_id": last}
