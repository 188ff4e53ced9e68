"""Ingestion: validate, dedupe and store a batch of events, answering per event.

Set-based: one validation pass, one insert statement for the accepted events (`INSERT …
RETURNING`, stored event_ids skipped by the key trigger, ADR 0021), one bulk insert for the
rejected ones. No per-row INSERT and no per-row uniqueness query, so a batch of 500 costs a few
milliseconds. The validator is the one registered in `events.validation` (the quality app's,
with the stored rules).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics_site.sql import is_postgres
from events.derivation import ClientContext, ip_or_none
from events.models import Event
from events.schema import FieldError, has_escaped_nul
from events.services.quarantine import (
    IngestSource,
    payload_text_field,
    raw_payload_encode,
    rejected_events_upsert,
)
from events.services.store import events_insert
from events.validation import BatchValidator, Contexts, validator_get

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"

_NO_WARNINGS: tuple = ()  # shared by rows without warnings; stored as []


@dataclass(slots=True)
class EventOutcome:
    index: int
    status: str
    event_id: str | None = None
    id: int | None = None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    rejected_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id is not None:
            data["event_id"] = self.event_id
        if self.id is not None:
            data["id"] = self.id
        if self.errors:
            data["errors"] = [error.as_dict() for error in self.errors]
        if self.warnings:
            data["warnings"] = [warning.as_dict() for warning in self.warnings]
        if self.rejected_id is not None:
            data["rejected_id"] = self.rejected_id
        return data


def event_batch_ingest(
    payloads: Sequence[Any],
    *,
    source: IngestSource,
    received_at: dt.datetime | None = None,
    validator: BatchValidator | None = None,
    sizes_checked: bool = False,
    context: Contexts = None,
    originals: Sequence[Any] | None = None,
) -> list[EventOutcome]:
    """Validate, dedupe and store a batch; return one outcome per payload, in order.

    Valid events are stored even when others are bad. An event_id seen twice in the batch or
    already stored is reported as a duplicate and stored once. `sizes_checked` says that the
    caller already bounded each event to INGEST_MAX_EVENT_BYTES (a single-event request body).

    For protocol translators (the trackers app): `source.protocol` is stored as each event's
    `source`; `context` is the client's User-Agent and IP for deriving device type and
    country, one ClientContext for the batch or one (or None) per payload, by default
    `source.user_agent` and `source.ip`; `originals[i]` (JSON, or None) is kept on event i as
    the message it was translated from.
    """
    received_at = received_at or timezone.now()
    batch_context = ClientContext(source.user_agent, source.ip)
    per_event = context is not None and not isinstance(context, ClientContext)
    if context is not None and not per_event:
        batch_context = context
    store_ip = settings.STORE_CLIENT_IP
    postgres = originals is not None and is_postgres()
    validator = validator or validator_get()
    outcomes: list[EventOutcome] = []
    pending: list[EventOutcome] = []
    rows_to_insert: list[dict[str, Any]] = []
    rejected_items: list[tuple[Any, list[FieldError]]] = []
    rejected_outcomes: list[EventOutcome] = []
    # Positions in `results` of each rejected item (None: refused before validation) and of
    # each pending row; `resent` collects those whose event was already stored or quarantined,
    # so that the rule counters count distinct events (ADR 0009).
    rejected_positions: list[int | None] = []
    pending_positions: list[int] = []
    resent: set[int] = set()

    # Each payload's JSON, written once for the size limit and handed to the schema layer.
    encoded: list[bytes | None] | None = None
    if sizes_checked:
        sized = list(enumerate(payloads))
    else:
        sized = []
        encoded = []
        max_event_bytes = settings.INGEST_MAX_EVENT_BYTES
        for index, payload in enumerate(payloads):
            payload_json = _json_or_none(payload)
            if payload_json is None or len(payload_json) <= max_event_bytes:
                sized.append((index, payload))
                encoded.append(payload_json)
                continue
            size_error = FieldError(
                "event", "max_size", f"must be at most {max_event_bytes} bytes of JSON"
            )
            outcome = EventOutcome(index, REJECTED, errors=[size_error])
            outcome.event_id = payload_text_field(payload, "event_id", 64) or None
            outcomes.append(outcome)
            rejected_items.append((payload, [size_error]))
            rejected_outcomes.append(outcome)
            rejected_positions.append(None)

    if per_event:
        contexts: Contexts = [context[index] or batch_context for index, _ in sized]
    else:
        contexts = batch_context
    results = validator.validate_batch(
        [payload for _, payload in sized],
        received_at=received_at,
        contexts=contexts,
        encoded=encoded,
    )
    seen_ids: set[str] = set()
    for position, ((index, payload), result) in enumerate(zip(sized, results, strict=True)):
        if result.errors:
            outcome = EventOutcome(
                index,
                REJECTED,
                event_id=payload_text_field(payload, "event_id", 64) or None,
                errors=result.errors,
                warnings=result.warnings,
            )
            # A translated message is quarantined as the client sent it (ADR 0016).
            kept = payload if originals is None or originals[index] is None else originals[index]
            if type(kept) is bytes:  # a message's JSON, already written by its translation
                kept = orjson.loads(kept)
            rejected_items.append((kept, result.errors + result.warnings))
            rejected_outcomes.append(outcome)
            rejected_positions.append(position)
            outcomes.append(outcome)
            continue
        row = result.row
        # The UUID's canonical text, written by orjson in C (str() runs uuid.py's Python code).
        event_id = orjson.dumps(row["event_id"])[1:-1].decode()
        if event_id in seen_ids:
            outcomes.append(EventOutcome(index, DUPLICATE, event_id=event_id))
            resent.add(position)
            continue
        seen_ids.add(event_id)
        warnings = result.warnings
        row["warnings"] = [warning.as_dict() for warning in warnings] if warnings else _NO_WARNINGS
        if source.protocol != "api":
            row["source"] = source.protocol
        if originals is not None and originals[index] is not None:
            row["original"] = original_storable(originals[index], encoded=postgres)
        if store_ip:
            row_context = (context[index] or batch_context) if per_event else batch_context
            row["client_ip"] = ip_or_none(row_context.ip)
        outcome = EventOutcome(index, ACCEPTED, event_id=event_id, warnings=warnings)
        rows_to_insert.append(row)
        pending.append(outcome)
        pending_positions.append(position)
        outcomes.append(outcome)

    if rejected_items:
        with transaction.atomic():
            inserted = events_insert(rows_to_insert)
            written = rejected_events_upsert(rejected_items, source=source, received_at=received_at)
        for outcome, position, write in zip(
            rejected_outcomes, rejected_positions, written, strict=True
        ):
            outcome.rejected_id = write.id
            if not write.new and position is not None:
                resent.add(position)
    else:
        # One statement commits on its own: no BEGIN/COMMIT round trips.
        inserted = events_insert(rows_to_insert)
    for outcome, position in zip(pending, pending_positions, strict=True):
        new_id = inserted.get(outcome.event_id)
        if new_id is None:
            outcome.status = DUPLICATE
            outcome.warnings = []
            resent.add(position)
        else:
            outcome.id = new_id
    validator.stats_record(results, received_at=received_at, resent=frozenset(resent))
    if rejected_outcomes and not sizes_checked:
        outcomes.sort(key=lambda outcome: outcome.index)
    return outcomes


def original_storable(message: Any, *, encoded: bool = False) -> Any:
    """The original message as stored: as is, or (lone surrogates, NUL, integers beyond 64
    bits, which jsonb refused; the json column keeps that rule, ADR 0026) its escaped JSON text
    under `unstorable_json`. `encoded`: as the JSON bytes already written for that check,
    which the PostgreSQL insert sends as they are (events.services.store, ADR 0033).

    `message` may be those bytes already (orjson's, written by a translation that measured
    the message with them, ADR 0038): they are not written again."""
    if type(message) is bytes:
        if not has_escaped_nul(message):
            return message if encoded else orjson.loads(message)
        message = orjson.loads(message)
    try:
        text = orjson.dumps(message)
        if not has_escaped_nul(text):
            return text if encoded else message
    except (TypeError, orjson.JSONEncodeError):
        pass
    text, _ = raw_payload_encode(message)
    return {"unstorable_json": text}


def _json_or_none(payload: Any) -> bytes | None:
    """The payload as JSON, or None when it is not plain JSON data (e.g. lone surrogates):
    the schema layer explains why."""
    try:
        return orjson.dumps(payload)
    except (TypeError, orjson.JSONEncodeError):
        return None


def event_ingest(payload: Any, *, source: IngestSource) -> EventOutcome:
    """Ingest one event (its request body was already bounded to INGEST_MAX_EVENT_BYTES).
    A duplicate reports the id of the event already stored."""
    outcome = event_batch_ingest([payload], source=source, sizes_checked=True)[0]
    if outcome.status == DUPLICATE and outcome.event_id:
        outcome.id = (
            Event.objects.filter(event_id=outcome.event_id).values_list("id", flat=True).first()
        )
    return outcome
