"""From PostHog's and Snowplow's mapped messages to the ingestion service: event ids, missing
times, identity calls. Both protocols' views call `mapped_ingest`; the core is trackers.common.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from events import services
from events.authentication import KeyPrincipal
from trackers.common import Translated, translated_ingest, untranslatable
from trackers.event_ids import event_id_for
from trackers.mapping import IdentityCall, MappedEvent


def _key_id(request: Any) -> int | None:
    user = request.user
    return user.key_id if isinstance(user, KeyPrincipal) else None


def mapped_translate(
    mapped: MappedEvent, *, source: str, key_id: int | None, received_at: dt.datetime
) -> Translated:
    """Our payload with its event_id (a UUID derived from the sender's id per source and key,
    so a re-send dedupes) and a time (the receipt when the message has none); or the first
    reason it could not be translated."""
    if mapped.errors:
        return untranslatable(mapped.original, *mapped.errors[0])
    payload = mapped.payload  # the mapping's own dict, made for this message
    payload["event_id"] = event_id_for(
        source=source, key_id=key_id, message_id=mapped.foreign_id, message=mapped.original
    )
    if "timestamp" not in payload:
        payload["timestamp"] = received_at.isoformat()
    # All six fields in order, without NamedTuple's Python-level __new__ and its keywords
    # (a third of a microsecond per message).
    return _TUPLE_NEW(
        Translated, (mapped.original, payload, None, mapped.user_agent or "", mapped.ip or "", None)
    )


_TUPLE_NEW = tuple.__new__


def _call_time(call: IdentityCall, received_at: dt.datetime) -> dt.datetime:
    original = call.original if isinstance(call.original, dict) else {}
    value = original.get("timestamp")
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None:
        return received_at
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def identity_apply(calls: Sequence[IdentityCall], *, source: str) -> None:
    """Identify and alias calls on the person records (idempotent: a re-send changes nothing)."""
    received_at = timezone.now()
    for call in calls:
        when = _call_time(call, received_at)
        if call.kind == "alias" and call.anonymous_id:
            services.person_alias(
                previous_id=call.anonymous_id, user_id=call.user_id, timestamp=when, source=source
            )
        if call.traits or call.kind == "identify":
            services.person_identify(
                user_id=call.user_id,
                anonymous_id=None,
                traits=call.traits,
                timestamp=when,
                source=source,
            )


def mapped_ingest(
    items: Sequence[MappedEvent | IdentityCall],
    *,
    request: Any,
    source: str,
    translation: Mapping[str, Any] | None = None,
) -> tuple[list[services.EventOutcome], int]:
    """Apply a request's identity calls, then store its mapped events (one outcome each, in
    order, its `index` the event's place in `items`); returns the outcomes and how many
    identity calls were applied. `translation`: what the mapping read from the request (see
    `translated_ingest`)."""
    received_at = timezone.now()
    key_id = _key_id(request)
    positions = None  # each event's place among the request's messages, when not its own
    if {MappedEvent}.issuperset(map(type, items)):  # only events: the common case, in C
        events, calls = items, []
    else:
        positions = [n for n, item in enumerate(items) if isinstance(item, MappedEvent)]
        events = [items[n] for n in positions]
        calls = [item for item in items if isinstance(item, IdentityCall)]
    translated = [
        mapped_translate(item, source=source, key_id=key_id, received_at=received_at)
        for item in events
    ]
    if calls:  # first: the request's events then find the links (sessions, ADR 0014)
        identity_apply(calls, source=source)
    outcomes = (
        translated_ingest(translated, request=request, source=source, translation=translation)
        if translated
        else []
    )
    for outcome, position in zip(outcomes, positions or (), strict=False):
        outcome.index = position  # the message's own place: an identity call between events
    return outcomes, len(calls)
