"""Quarantine: events refused at ingestion, kept with their reasons, and replayed later.

Nothing sent is silently dropped: a refused event (or a request refused as a whole) is kept,
bounded, with the reasons, the rules that refused it and where it came from. A replay (the
quality app, after a rule is fixed) locks the rows it judges and records the outcome here.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from events.models import RejectedEvent
from events.schema import FieldError, text_safe
from events.services.store import json_default
from events.validation import ValidationResult


@dataclass(frozen=True, slots=True)
class IngestSource:
    """Where events came from, kept on rejected events for follow-up."""

    key_id: int | None = None
    ip: str | None = None


_MAX_RAW_DEPTH = 32


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-encodable copy of a payload orjson refused (lone surrogates, integers beyond 64
    bits, nesting past its limit); recursion is cut at a fixed depth."""
    if depth > _MAX_RAW_DEPTH:
        return "…(nested too deep)"
    if isinstance(value, dict):
        return {text_safe(key, 1000): _json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item, depth + 1) for item in value]
    if isinstance(value, str):
        return text_safe(value, len(value))
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def raw_payload_encode(payload: Any) -> tuple[str, bool]:
    """JSON text of a payload (or the raw body), cut to the configured bound in bytes.

    NUL bytes become `\\u0000` escapes and lone surrogates backslash escapes, which any
    database stores; the bound keeps a flood of huge bad events from filling the disk.
    """
    limit = settings.INGEST_REJECTED_PAYLOAD_MAX_BYTES
    if isinstance(payload, bytes):  # a raw request body that was not (acceptable) JSON
        encoded = payload[: limit + 4].decode("utf-8", "backslashreplace").encode()
    else:
        try:
            encoded = orjson.dumps(payload, default=json_default)
        except (TypeError, orjson.JSONEncodeError):
            encoded = orjson.dumps(_json_safe(payload), default=str)
    encoded = encoded.replace(b"\x00", b"\\u0000")
    if len(encoded) > limit:
        return encoded[:limit].decode("utf-8", "ignore"), True
    return encoded.decode(), False


def payload_text_field(payload: Any, name: str, limit: int) -> str:
    if not isinstance(payload, dict):
        return ""
    value = payload.get(name)
    if not isinstance(value, str):
        return ""
    return text_safe(value, limit - 1)[:limit]


def rejected_events_store(
    items: Sequence[tuple[Any, list[FieldError]]],
    *,
    source: IngestSource,
    received_at: dt.datetime,
) -> list[int]:
    """Keep refused payloads with their reasons. Returns the new rows' ids in order."""
    if not items:
        return []
    rejected = []
    for payload, errors in items:
        raw_text, truncated = raw_payload_encode(payload)
        rejected.append(
            RejectedEvent(
                event_id=payload_text_field(payload, "event_id", 64),
                event_type=payload_text_field(payload, "event_type", 64),
                raw_payload=raw_text,
                raw_truncated=truncated,
                reasons=[error.as_dict() for error in errors],
                rule_ids=sorted({e.rule_id for e in errors if e.rule_id is not None}),
                source_key_id=source.key_id,
                source_ip=source.ip,
                received_at=received_at,
            )
        )
    created = RejectedEvent.objects.bulk_create(rejected)
    if created and created[0].pk is None:  # backends without RETURNING
        newest = RejectedEvent.objects.order_by("-pk").values_list("pk", flat=True)[: len(created)]
        return sorted(newest)
    return [row.pk for row in created]


def request_rejected_store(body: bytes | Any, error: FieldError, *, source: IngestSource) -> int:
    """Keep a request refused as a whole (not JSON, not the documented shape, too many events,
    too large), bounded, so that the sender's mistake can be seen and nothing is silently lost."""
    return rejected_events_store([(body, [error])], source=source, received_at=timezone.now())[0]


def rejected_events_lock_quarantined(rejected_ids: Sequence[int]) -> list[RejectedEvent]:
    """The rows of these ids still in quarantine, locked, in pk order; call inside a
    transaction. A row locked by another replay is skipped (SKIP LOCKED) and one already
    replayed no longer matches, so two replays of the same rows replay each row once."""
    return list(
        RejectedEvent.objects.select_for_update(skip_locked=True)
        .filter(pk__in=rejected_ids, status=RejectedEvent.Status.QUARANTINED)
        .order_by("pk")
    )


def rejected_events_replay_record(
    replayed: Sequence[RejectedEvent],
    refused: Sequence[tuple[RejectedEvent, ValidationResult]],
    *,
    now: dt.datetime,
) -> None:
    """Record one replay of rows locked by `rejected_events_lock_quarantined`, in the same
    transaction: `replayed` leave quarantine (their events were stored, or already were);
    `refused` stay, with the reasons of this validation. The instances are updated too."""
    for row in replayed:
        row.status = RejectedEvent.Status.REPLAYED
    for row, result in refused:
        row.reasons = [error.as_dict() for error in result.errors + result.warnings]
        row.rule_ids = sorted({e.rule_id for e in result.errors if e.rule_id is not None})
    still = [row for row, _ in refused]
    for row in (*replayed, *still):
        row.replay_count += 1
        row.replayed_at = now
    RejectedEvent.objects.bulk_update(
        replayed, ["status", "replay_count", "replayed_at"], batch_size=500
    )
    RejectedEvent.objects.bulk_update(
        still, ["reasons", "rule_ids", "replay_count", "replayed_at"], batch_size=500
    )
