"""People and the links between their ids: identify and alias calls (ADR 0015).

A person is a canonical id (`Person.distinct_id`) and the ids linked to it (`PersonLink`). An
event's person is its id (user id, else anonymous id) or, when that id is linked, the id it is
linked to: one join, because a link always points at a canonical id (merging re-points the
links of the person merged away). Distinct-user numbers count these people.

Both calls are idempotent (the same call twice leaves the same rows) and safe with concurrent
calls: every change to the id graph happens under one transaction-scoped advisory lock, so two
calls linking the same ids cannot both merge. Apps that count people register a listener,
called in the same transaction with each merge (`person_merge_listener_register`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

from django.db import connection, transaction

from analytics_site.sql import is_postgres
from events.models import Person, PersonLink

# Arbitrary constant naming the identity graph's lock (pg_advisory_xact_lock takes a bigint).
_IDENTITY_LOCK_KEY = 0x1D_E471_7100

# Called with (merged_id, into_id) pairs: every event counted under `merged_id` now belongs to
# `into_id`. Called inside the transaction that links them.
PersonMergeListener = Callable[[Sequence[tuple[str, str]]], object]
_merge_listeners: list[PersonMergeListener] = []


def person_merge_listener_register(listener: PersonMergeListener) -> None:
    """Have `listener(pairs)` called whenever ids merge into another person. Registering the
    same listener twice keeps one."""
    if listener not in _merge_listeners:
        _merge_listeners.append(listener)


ID_MAX_CHARS = 128  # Person.distinct_id, PersonLink.linked_id: as Event.user_id


def _ids_check(*ids: str | None) -> None:
    """Callers (API views, protocol translators) validate first; this keeps a bad id from
    reaching the database as an error (a 500) instead of a refusal they can name."""
    for value in ids:
        if value is not None and (len(value) > ID_MAX_CHARS or "\x00" in value):
            raise ValueError(f"ids are at most {ID_MAX_CHARS} characters, without NUL")


def _graph_lock() -> None:
    """Serialize changes to the id graph (SQLite has one writer at a time anyway)."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_IDENTITY_LOCK_KEY])


def _canonical(distinct_id: str) -> str:
    linked = PersonLink.objects.filter(linked_id=distinct_id).values_list("user_id", flat=True)
    return next(iter(linked), distinct_id)


def _traits_merged(
    old: dict, new: dict, *, new_at: dt.datetime, last_seen: dt.datetime | None
) -> dict:
    """The newer call's traits win key by key, whatever order the calls arrive in; applying
    the same call twice changes nothing."""
    if last_seen is None or new_at >= last_seen:
        return {**old, **new}
    return {**new, **old}


def _person_touch(distinct_id: str, *, traits: dict, timestamp: dt.datetime) -> Person:
    person = Person.objects.select_for_update().filter(distinct_id=distinct_id).first()
    if person is None:
        return Person.objects.create(
            distinct_id=distinct_id, first_seen=timestamp, last_seen=timestamp, traits=traits
        )
    person.traits = _traits_merged(
        person.traits, traits, new_at=timestamp, last_seen=person.last_seen
    )
    person.first_seen = min(person.first_seen, timestamp)
    person.last_seen = max(person.last_seen, timestamp)
    person.save(update_fields=["traits", "first_seen", "last_seen", "updated_at"])
    return person


def _merge(merged_id: str, into: Person, *, source: str, timestamp: dt.datetime) -> None:
    """Make canonical id `merged_id` (and every id linked to it) part of `into`."""
    old = Person.objects.select_for_update().filter(distinct_id=merged_id).first()
    if old is not None:
        # The person merged away keeps nothing of its own: its traits and times join `into`.
        into.traits = {**old.traits, **into.traits}
        into.first_seen = min(into.first_seen, old.first_seen)
        into.last_seen = max(into.last_seen, old.last_seen)
        into.save(update_fields=["traits", "first_seen", "last_seen", "updated_at"])
    PersonLink.objects.filter(user_id=merged_id).update(user_id=into.distinct_id, person=into)
    PersonLink.objects.create(
        linked_id=merged_id,
        user_id=into.distinct_id,
        person=into,
        source=source[:32],
        linked_at=timestamp,
    )
    if old is not None:
        old.delete()
    for listener in _merge_listeners:
        listener([(merged_id, into.distinct_id)])


def person_identify(
    *,
    user_id: str | None,
    anonymous_id: str | None,
    traits: dict,
    timestamp: dt.datetime,
    source: str,
) -> None:
    """Store `traits` on the person of `user_id` (else of `anonymous_id`); with both, link the
    anonymous id to the user id.

    An anonymous id belongs to the first user it is identified with: identifying it later with
    another user does not move it (a shared device must not merge two customers); `person_alias`
    does, on purpose. Idempotent; safe with concurrent calls.
    """
    if not user_id and not anonymous_id:
        raise ValueError("person_identify needs user_id or anonymous_id")
    _ids_check(user_id, anonymous_id)
    with transaction.atomic():
        _graph_lock()
        target = _canonical(user_id or anonymous_id)
        person = _person_touch(target, traits=traits, timestamp=timestamp)
        if not user_id or not anonymous_id or anonymous_id == user_id:
            return
        anonymous_root = _canonical(anonymous_id)
        if anonymous_root == anonymous_id and anonymous_root != target:
            _merge(anonymous_id, person, source=source, timestamp=timestamp)


def person_alias(*, previous_id: str, user_id: str, timestamp: dt.datetime, source: str) -> None:
    """Make `previous_id`'s person (an anonymous id, or a user id given up) part of `user_id`'s
    person: its ids, traits and events count as that person from now on, and the rollups
    counted so far are re-keyed (ADR 0015). Idempotent; safe with concurrent calls."""
    if not previous_id or not user_id:
        raise ValueError("person_alias needs previous_id and user_id")
    _ids_check(previous_id, user_id)
    with transaction.atomic():
        _graph_lock()
        target = _canonical(user_id)
        person = _person_touch(target, traits={}, timestamp=timestamp)
        previous_root = _canonical(previous_id)
        if previous_root != target:
            _merge(previous_root, person, source=source, timestamp=timestamp)


def person_ids(distinct_ids: Iterable[str]) -> list[str]:
    """Every id of the people `distinct_ids` belong to (their canonical ids and linked ids),
    so that erasing a person reaches the events of all their ids."""
    given = {value for value in distinct_ids if value}
    roots = {_canonical(value) for value in given}
    linked = PersonLink.objects.filter(user_id__in=roots).values_list("linked_id", flat=True)
    return sorted(given | roots | set(linked))


def people_delete(distinct_ids: Iterable[str]) -> int:
    """Delete the person records and links of `distinct_ids` (erasure; pass `person_ids`).
    Returns how many rows (people and links) went; ids with none count 0."""
    ids = [value for value in distinct_ids if value]
    removed_links, _ = PersonLink.objects.filter(linked_id__in=ids).delete()
    removed_people, _ = Person.objects.filter(distinct_id__in=ids).delete()
    return removed_links + removed_people
