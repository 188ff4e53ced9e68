"""Session ids for events that came without one (ADR 0014).

Events of the same person less than SESSION_GAP apart share a session. A person is a user id,
or an anonymous id, and an anonymous id seen beside exactly one user id (a sign-in) belongs to
that user: the visit before the sign-in and after it is one session. Assignment happens at
store time, inside the storing transaction, per identity under a transaction-scoped advisory
lock: two workers storing events of the same person one after
the other see each other's rows, so concurrent batches agree. Within a batch, events are
sorted by event time first, so a batch out of order is grouped as if it were in order. A
group of events joins the session of the nearest stored event of that person within
SESSION_GAP (before or after it: late and out-of-order events join the session they fall
in); otherwise it starts a new session whose id is derived from the person and the group's
first event id (a retried batch derives the same id). Stored events are never rewritten: a
late event that bridges two stored sessions joins the nearer one, and the two stay apart
(the rollups folded them once, ADR 0011).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import defaultdict
from typing import Any

from django.db import connection

from analytics_site.sql import is_postgres
from events.facade import EVENTS_TABLE

SESSION_GAP = dt.timedelta(minutes=30)
# The first key of the two-key advisory locks on identities (ADR 0014); the one-key locks of
# reports.locks live in a separate key space.
SESSION_LOCK_SPACE = 14
SESSION_LOCK_BUCKETS = 1024
_SESSION_NAMESPACE = uuid.UUID("5f0c3a9e-0d14-4c1e-9a57-0e5e55101014")


def _identity(row: dict[str, Any]) -> tuple[str, str]:
    if row["user_id"]:
        return ("user", row["user_id"])
    return ("anonymous", row["anonymous_id"])


def _lock_key(identity: tuple[str, str]) -> int:
    """One of SESSION_LOCK_BUCKETS per identity: two people may share a lock (they then wait
    for each other, which is safe), and a batch never holds more locks than that, however
    many people it has (advisory locks take slots in PostgreSQL's shared lock table)."""
    digest = hashlib.blake2b(f"{identity[0]}:{identity[1]}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % SESSION_LOCK_BUCKETS


def _identities_lock(identities: list[tuple[str, str]]) -> None:
    """Hold each identity's lock until the transaction ends; taken in key order, so two
    batches locking overlapping people cannot deadlock."""
    keys = sorted({_lock_key(identity) for identity in identities})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int[]) WITH ORDINALITY AS t(k, n) "
            "ORDER BY n",
            [SESSION_LOCK_SPACE, keys],
        )


# Raw SQL: the ORM's query building cost ten times the rest of a single event's ingestion.
# Users come through event_user_idx, anonymous ids through event_anon_ts_idx (partial): the
# latter with any user id, since a row carrying both is how a sign-in links the two.
_NEIGHBOURS_SQL = (
    "SELECT user_id, anonymous_id, timestamp, session_id "  # noqa: S608 - names from the model
    f"FROM {EVENTS_TABLE} WHERE timestamp > %s AND timestamp < %s AND session_id <> '' AND ("
    "user_id = ANY(%s) OR (anonymous_id <> '' AND anonymous_id = ANY(%s)))"
)

Identity = tuple[str, str]
Stored = list[tuple[str, str, dt.datetime, str]]  # user_id, anonymous_id, timestamp, session


def _stored_rows(window: list[dt.datetime], users: list[str], anonymous: list[str]) -> Stored:
    """Stored events within the window of these users or anonymous ids, with a session."""
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(_NEIGHBOURS_SQL, [*window, users, anonymous])
        else:  # SQLite (the demo) has no arrays: the same query with IN lists
            cursor.execute(
                _NEIGHBOURS_SQL.replace("= ANY(%s)", "IN ({})").format(
                    ", ".join(["%s"] * len(users)) or "NULL",
                    ", ".join(["%s"] * len(anonymous)) or "NULL",
                ),
                [*window, *users, *anonymous],
            )
        rows = cursor.fetchall()
    return [
        (user_id, anonymous_id, stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC), session)
        for user_id, anonymous_id, stamp, session in rows  # SQLite's raw rows: naive UTC
    ]


def _people(links: dict[str, set[str]]) -> dict[Identity, Identity]:
    """Each anonymous id seen beside exactly one user id (a sign-in: the SDK sends both once
    the user is known) belongs to that user's person; one seen beside several users (a shared
    device that was not reset) stays its own. Maps identity -> its person's identity."""
    return {
        ("anonymous", anonymous_id): ("user", next(iter(users)))
        for anonymous_id, users in links.items()
        if len(users) == 1
    }


def _clusters(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows in event-time order, split where two neighbours are SESSION_GAP or more apart."""
    rows.sort(key=lambda row: (row["timestamp"], str(row["event_id"])))
    clusters = [[rows[0]]]
    for row in rows[1:]:
        if row["timestamp"] - clusters[-1][-1]["timestamp"] >= SESSION_GAP:
            clusters.append([])
        clusters[-1].append(row)
    return clusters


def _nearest_session(
    first: dt.datetime, last: dt.datetime, stored: list[tuple[dt.datetime, str]]
) -> str | None:
    best: tuple[dt.timedelta, dt.datetime, str] | None = None
    for timestamp, session_id in stored:
        distance = max(first - timestamp, timestamp - last, dt.timedelta(0))
        if distance < SESSION_GAP and (best is None or (distance, timestamp) < best[:2]):
            best = (distance, timestamp, session_id)
    return best[2] if best else None


def sessions_assign(rows: list[dict[str, Any]]) -> None:
    """Give every row without a session_id its session. Call inside the transaction that
    stores the rows (it locks their identities until that transaction ends).

    A person is a user id with the anonymous ids that sign-in linked to it (`_people`): the
    visitor's events before the sign-in and the user's after it are one session."""
    groups: dict[Identity, list[dict[str, Any]]] = defaultdict(list)
    links: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if not row.get("session_id"):
            groups[_identity(row)].append(row)
            if row["user_id"] and row["anonymous_id"]:
                links[row["anonymous_id"]].add(row["user_id"])
    if not groups:
        return
    anonymous_ids = {value for kind, value in groups if kind == "anonymous"} | set(links)
    if is_postgres():  # every batch carrying an anonymous id takes its lock: they serialize
        _identities_lock([*groups, *(("anonymous", value) for value in anonymous_ids)])
    stamps = [row["timestamp"] for group in groups.values() for row in group]
    window = [min(stamps) - SESSION_GAP, max(stamps) + SESSION_GAP]
    users = [value for kind, value in groups if kind == "user"]
    stored = _stored_rows(window, users, sorted(anonymous_ids))
    for user_id, anonymous_id, _, _ in stored:
        if user_id and anonymous_id in anonymous_ids:
            links[anonymous_id].add(user_id)
    person_of = _people(links)
    by_person: dict[Identity, list[dict[str, Any]]] = defaultdict(list)
    for identity, group in groups.items():
        by_person[person_of.get(identity, identity)] += group
    neighbours: dict[Identity, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for user_id, anonymous_id, timestamp, session_id in stored:
        identity = ("user", user_id) if user_id else ("anonymous", anonymous_id)
        neighbours[person_of.get(identity, identity)].append((timestamp, session_id))
    for person, group in by_person.items():
        for cluster in _clusters(group):
            first, last = cluster[0]["timestamp"], cluster[-1]["timestamp"]
            session_id = _nearest_session(first, last, neighbours.get(person, []))
            if session_id is None:
                name = f"{person[0]}:{person[1]}:{cluster[0]['event_id']}"
                session_id = f"s_{uuid.uuid5(_SESSION_NAMESPACE, name).hex}"
            for row in cluster:
                row["session_id"] = session_id
