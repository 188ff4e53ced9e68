"""Session ids for events that came without one (ADR 0014).

Events of the same person less than SESSION_GAP apart share a session. A person is a user id
with the ids linked to it: an anonymous id seen on events beside exactly one user id (a
sign-in), and the ids that identify and alias calls linked to it (`PersonLink`, ADR 0015: a
server SDK that switches from the anonymous id to the user id sends only the identify call).
The visit before the sign-in and after it is one session, for events stored after the link.
Assignment happens at store time, inside the storing transaction, under transaction-scoped
advisory locks on the batch's identities and on the people they are linked to (links read in
one query first, so every lock is taken in one statement, in key order): two workers storing
events of the same person one after the other see each other's rows, so concurrent batches
agree. Within a batch, events are sorted by event time first, so a batch out of order is
grouped as if it were in order. A group of events joins the session of the nearest stored
event of that person within SESSION_GAP (before or after it: late and out-of-order events
join the session they fall in); otherwise it starts a new session whose id is derived from
the person and the group's first event id (a retried batch derives the same id). Stored
events are never rewritten: a late event that bridges two stored sessions joins the nearer
one, and two sides of a visit stored before their link stay apart (the rollups folded them
once, ADR 0011).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import defaultdict
from typing import Any

from django.db import connection

from analytics_site.sql import is_postgres
from events.facade import EVENTS_TABLE, PERSON_LINKS_TABLE

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
# Every link of the people these ids belong to: the ids' own links (id -> canonical) and the
# other ids linked to the same canonical ids (both through PersonLink's indexes).
_LINKS_SQL = (
    f"SELECT linked_id, user_id FROM {PERSON_LINKS_TABLE} WHERE user_id = ANY(%s) "  # noqa: S608
    f"UNION SELECT l.linked_id, l.user_id FROM {PERSON_LINKS_TABLE} l "
    f"JOIN {PERSON_LINKS_TABLE} own ON own.user_id = l.user_id WHERE own.linked_id = ANY(%s)"
)

Identity = tuple[str, str]
Stored = list[tuple[str, str, dt.datetime, str]]  # user_id, anonymous_id, timestamp, session


def _fetch(sql: str, scalars: list[Any], lists: list[list[str]]) -> list[tuple[Any, ...]]:
    """Run `sql`, whose `= ANY(%s)` placeholders take `lists`, after the `scalars`."""
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(sql, [*scalars, *lists])
        else:  # SQLite (the demo) has no arrays: the same query with IN lists
            sql = sql.replace("= ANY(%s)", "IN ({})").format(
                *(", ".join(["%s"] * len(values)) or "NULL" for values in lists)
            )
            cursor.execute(sql, [*scalars, *(value for values in lists for value in values)])
        return cursor.fetchall()


def _links(ids: list[str]) -> dict[str, str]:
    """linked id -> canonical id, for every id of the people `ids` belong to (ADR 0015)."""
    return dict(_fetch(_LINKS_SQL, [], [ids, ids]))


def _stored_rows(window: list[dt.datetime], users: list[str], anonymous: list[str]) -> Stored:
    """Stored events within the window of these users or anonymous ids, with a session."""
    rows = _fetch(_NEIGHBOURS_SQL, window, [users, anonymous])
    return [
        (user_id, anonymous_id, stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC), session)
        for user_id, anonymous_id, stamp, session in rows  # SQLite's raw rows: naive UTC
    ]


def _people(
    identities: set[Identity], seen_with: dict[str, set[str]], links: dict[str, str]
) -> dict[Identity, Identity]:
    """Maps identity -> its person's identity. A user id aliased to another is that one's. An
    anonymous id belongs to the one user it was seen beside on events (a sign-in: the SDK sends
    both once the user is known) or identified with (`links`: a server SDK that switches ids
    sends only the identify call); one tied to several users (a shared device that was not
    reset) stays its own."""
    people = {}
    for kind, value in identities:
        if kind == "user":
            if value in links:
                people[(kind, value)] = ("user", links[value])
            continue
        users = {links.get(user, user) for user in seen_with.get(value, ())}
        if value in links:
            users.add(links[value])
        if len(users) == 1:
            people[(kind, value)] = ("user", users.pop())
    return people


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
    stores the rows (it locks their people until that transaction ends).

    A person is a user id with the ids linked to it, by events carrying both ids or by
    identify and alias calls (`_people`): the visitor's events before the sign-in and the
    user's after it are one session."""
    groups: dict[Identity, list[dict[str, Any]]] = defaultdict(list)
    seen_with: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if not row.get("session_id"):
            groups[_identity(row)].append(row)
            if row["user_id"] and row["anonymous_id"]:
                seen_with[row["anonymous_id"]].add(row["user_id"])
    if not groups:
        return
    users = {value for kind, value in groups if kind == "user"}
    anonymous_ids = {value for kind, value in groups if kind == "anonymous"} | set(seen_with)
    links = _links(sorted(users | anonymous_ids))  # read before the locks (ADR 0014)
    if is_postgres():  # batches of one person share a lock: the anonymous id's, or the user's
        people = {("user", links[value]) for value in users | anonymous_ids if value in links}
        _identities_lock([*groups, *(("anonymous", value) for value in anonymous_ids), *people])
    stamps = [row["timestamp"] for group in groups.values() for row in group]
    window = [min(stamps) - SESSION_GAP, max(stamps) + SESSION_GAP]
    anonymous_ids |= set(links)  # ids are one namespace: a linked id may be either
    stored = _stored_rows(
        window, sorted(users | set(links) | set(links.values())), sorted(anonymous_ids)
    )
    identities = set(groups)
    for user_id, anonymous_id, _, _ in stored:
        identities.add(("user", user_id) if user_id else ("anonymous", anonymous_id))
        if user_id and anonymous_id in anonymous_ids:
            seen_with[anonymous_id].add(user_id)
    person_of = _people(identities, seen_with, links)
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
