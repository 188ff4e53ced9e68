"""What a replay of a quarantined row validates (ADR 0029).

A row from our own API holds our wire format: it is validated as it is. A row holding one
message of a tracker protocol (Segment, PostHog, Snowplow) holds the message as the client sent
it: it is translated again, by the protocol that delivered it, with what that translation read
from the request (`RejectedEvent.translation`) and as of the row's receipt, so the event gets
the event id its first delivery would have had (a re-send already stored is a duplicate: once).

Events is the bottom layer: the trackers app registers one retranslator per protocol at
start-up (`retranslator_register`, from `TrackersConfig.ready()`), as quality registers the
validator.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from events.derivation import ClientContext
from events.models import RejectedEvent
from events.schema import FieldError


@dataclass(frozen=True, slots=True)
class Retranslated:
    """A protocol message translated again: our wire-format `payload` (with the client's
    User-Agent and IP the message states, if any), or the `error` that still keeps it out, or
    an identity call to apply (`identity_apply`: not an event)."""

    payload: dict[str, Any] | None = None
    error: FieldError | None = None
    user_agent: str = ""
    ip: str = ""
    identity_apply: Callable[[], None] | None = None


class Retranslator(Protocol):
    def __call__(
        self,
        original: Any,
        *,
        translation: Mapping[str, Any],
        key_id: int | None,
        received_at: dt.datetime,
    ) -> Retranslated: ...


_retranslators: dict[str, Retranslator] = {}
# For rows quarantined before ADR 0029: whether an original has the shape of one protocol's
# message, per source (registered by the trackers app beside its retranslators).
_shape_recognisers: dict[str, Callable[[dict[str, Any]], bool]] = {}
# The translation context of a row whose source was recognised by shape: no request context
# is known (a PostHog body's sent_at, a Segment single call's path), the message's own is used.
SHAPE_INFERRED = {"source": "inferred from the message's shape (ADR 0037)"}
SHAPE_UNKNOWN = frozenset({"ambiguous", "unrecognised"})  # counted, left as they are


def retranslator_register(source: str, retranslate: Retranslator) -> None:
    """Translate quarantined messages of `source` (an event's source: segment, posthog ...)
    with `retranslate` when they are replayed. Called once per protocol at start-up."""
    _retranslators[source] = retranslate


def protocol_shape_register(source: str, recognises: Callable[[dict[str, Any]], bool]) -> None:
    """`recognises(original)`: whether a quarantined original is one `source` message."""
    _shape_recognisers[source] = recognises


def rejected_sources_infer(*, apply: bool) -> dict[str, int]:
    """Rows quarantined before ADR 0029 hold a protocol's message under `source = api`, with no
    translation: their replay validated them as our format and could not pass. A row whose
    original is a JSON object without our `event_type` and has the shape of exactly one
    protocol's message gets that source (and SHAPE_INFERRED as its translation), so that a
    replay translates it again. Counts per source, plus `ambiguous` and `unrecognised`; with
    `apply=False` nothing is written. Idempotent: a changed row is no longer `api`."""
    counts: dict[str, int] = {}
    rows = RejectedEvent.objects.filter(
        source="api",
        translation__isnull=True,
        status=RejectedEvent.Status.QUARANTINED,
        raw_truncated=False,
    ).only("id", "raw_payload", "raw_truncated")
    for row in rows.iterator(chunk_size=1000):
        original = row.payload
        if not isinstance(original, dict) or "event_type" in original:
            continue  # our own format (or not one message): validated as it is
        found = [source for source, shaped in _shape_recognisers.items() if shaped(original)]
        name = found[0] if len(found) == 1 else ("ambiguous" if found else "unrecognised")
        counts[name] = counts.get(name, 0) + 1
        if apply and len(found) == 1:
            RejectedEvent.objects.filter(pk=row.pk, source="api", translation__isnull=True).update(
                source=found[0], translation=SHAPE_INFERRED
            )
    return counts


@dataclass(frozen=True, slots=True)
class ReplayInput:
    """One quarantined row, ready for validation: `payload` in our wire format with the client
    `context` to derive from (None: none known), stored with `source` and `original`; or the
    `error` that keeps it in quarantine; or an identity call to apply instead."""

    payload: Any = None
    context: ClientContext | None = None
    source: str = "api"
    original: Any = None
    error: FieldError | None = None
    identity_apply: Callable[[], None] | None = None


def _not_replayable(message: str) -> ReplayInput:
    return ReplayInput(error=FieldError("message", "replayable", message))


def rejected_replay_input(row: RejectedEvent) -> ReplayInput:
    """What a replay validates for this row: its payload (our API), or its protocol message
    translated again. A protocol row without a translation context (a request refused as a
    whole) or cut at the payload bound is not replayable; it stays, saying so."""
    payload = row.payload
    if row.source == "api":
        return ReplayInput(payload=payload if isinstance(payload, dict) else row.raw_payload)
    retranslate = _retranslators.get(row.source)
    if retranslate is None:
        return _not_replayable(f"no translation of {row.source} messages is installed")
    if row.translation is None:
        return _not_replayable(f"a {row.source} request refused as a whole is not one message")
    if row.raw_truncated:
        return _not_replayable("the message was cut at the quarantine's size bound")
    translation = row.translation if isinstance(row.translation, dict) else {}
    result = retranslate(
        payload, translation=translation, key_id=row.source_key_id, received_at=row.received_at
    )
    if result.identity_apply is not None:
        return ReplayInput(
            source=row.source, original=payload, identity_apply=result.identity_apply
        )
    if result.error is not None or result.payload is None:
        error = result.error or FieldError("message", "translation", "translated to nothing")
        return ReplayInput(source=row.source, original=payload, error=error)
    context = ClientContext(
        result.user_agent or translation.get("user_agent", ""), result.ip or row.source_ip
    )
    return ReplayInput(payload=result.payload, context=context, source=row.source, original=payload)
