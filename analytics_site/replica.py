"""Reads off the primary (issue 15 §2, ADR 0022): `replica_reads()` runs a block of reads on
the streaming replica (`DATABASE_REPLICA_URL`) when it is up and close enough behind.

Only read-only pages and endpoints ask for it, around their one selector call: dashboards,
their CSV, the event stats, list and export reads. Anything that writes or must read its own
writes (admin, replay, rule try-out, ingestion, sign-in) never does, and a block inside an open
transaction stays on the primary. The block sees the replica as the default connection, so
selectors' raw SQL and ORM reads both go there without knowing. The replica's health (in
recovery, replay lag under `DATABASE_REPLICA_MAX_LAG_SECONDS`) is checked at most every
`DATABASE_REPLICA_CHECK_SECONDS` per process, on the replica connection itself (no primary
round trip). Imports no app (import-linter contract 5).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

REPLICA_ALIAS = "replica"

# Caught up (all WAL received is replayed): no lag, even if the primary has been idle for long;
# otherwise the age of the last replayed transaction.
_LAG_SQL = (
    "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
    "THEN 0 ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 1e9) "
    "END::float"
)

_checked = threading.local()


def replica_configured() -> bool:
    return REPLICA_ALIAS in settings.DATABASES


def _probe() -> bool:
    replica = connections[REPLICA_ALIAS]
    try:
        with replica.cursor() as cursor:
            cursor.execute(_LAG_SQL)
            in_recovery, lag = cursor.fetchone()
    except DatabaseError:
        replica.close()  # a fresh connection at the next probe
        return False
    return bool(in_recovery) and lag <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS


def replica_usable() -> bool:
    """Whether reads may go to the replica now (cached for DATABASE_REPLICA_CHECK_SECONDS)."""
    if not replica_configured():
        return False
    now = time.monotonic()
    last = getattr(_checked, "at", None)
    if last is None or now - last >= settings.DATABASE_REPLICA_CHECK_SECONDS:
        _checked.usable = _probe()
        _checked.at = now
    return _checked.usable


def replica_health_forget() -> None:
    """Probe again at the next block (after a read failed on the replica)."""
    _checked.at = None


@contextmanager
def replica_reads() -> Iterator[bool]:
    """Run the block's reads on the replica when usable; yields whether it does."""
    primary = connections[DEFAULT_DB_ALIAS]
    if primary.in_atomic_block or not replica_usable():
        yield False
        return
    connections[DEFAULT_DB_ALIAS] = connections[REPLICA_ALIAS]
    try:
        yield True
    except DatabaseError:
        replica_health_forget()
        raise
    finally:
        connections[DEFAULT_DB_ALIAS] = primary
