"""Quarantine: events refused at ingestion, kept with their reasons, and replayed later.

Nothing sent is silently dropped: a refused event (or a request refused as a whole) is kept,
bounded, with the reasons, the rules that refused it and where it came from. A resent bad event
is kept once (ADR 0009): its row counts the attempts. A replay (the quality app, after a rule
is fixed) locks the rows it judges and records the outcome here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import connection
from django.utils import timezone

from analytics_site.sql import is_postgres, sql_param
from events.models import RejectedEvent
from events.schema import FieldError, text_safe
from events.services.store import json_default
from events.validation import ValidationResult


@dataclass(frozen=True, slots=True)
class IngestSource:
    """Where events came from: the key and client IP are kept on rejected events for
    follow-up; `protocol` is stored on each event as its `source` (api, segment, posthog,
    snowplow, tracker); `user_agent` and `ip` are what derivation reads unless a per-event
    ClientContext says otherwise."""

    key_id: int | None = None
    ip: str | None = None
    protocol: str = "api"
    user_agent: str = ""
    # Set by a protocol for its messages (None: our API, or a request refused as a whole): what
    # the translation read from the request besides each message, kept with a quarantined
    # message so that a replay translates it again the same way (ADR 0029).
    translation: Mapping[str, Any] | None = None


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


def _raw_encode(payload: Any) -> bytes:
    """The whole JSON text of a payload (or the raw body), before any bound."""
    if isinstance(payload, bytes):  # a raw request body that was not (acceptable) JSON
        encoded = payload.decode("utf-8", "backslashreplace").encode()
    else:
        try:
            encoded = orjson.dumps(payload, default=json_default)
        except (TypeError, orjson.JSONEncodeError):
            encoded = orjson.dumps(_json_safe(payload), default=str)
    return encoded.replace(b"\x00", b"\\u0000")


def _raw_bound(encoded: bytes) -> tuple[str, bool]:
    limit = settings.INGEST_REJECTED_PAYLOAD_MAX_BYTES
    if len(encoded) > limit:
        return encoded[:limit].decode("utf-8", "ignore"), True
    return encoded.decode(), False


def raw_payload_encode(payload: Any) -> tuple[str, bool]:
    """JSON text of a payload (or the raw body), cut to the configured bound in bytes.

    NUL bytes become `\\u0000` escapes and lone surrogates backslash escapes, which any
    database stores; the bound keeps a flood of huge bad events from filling the disk.
    """
    return _raw_bound(_raw_encode(payload))


def payload_text_field(payload: Any, name: str, limit: int) -> str:
    if not isinstance(payload, dict):
        return ""
    value = payload.get(name)
    if not isinstance(value, str):
        return ""
    return text_safe(value, limit - 1)[:limit]


def rejected_dedupe_key(payload: Any, encoded: bytes, source: IngestSource) -> str:
    """What makes two refused payloads "the same bad event" (ADR 0009): the event_id when it
    parses as a UUID (the client's idempotency key, as for stored events); otherwise a hash of
    the whole raw payload and of who sent it (the key, or the IP without one)."""
    value = payload.get("event_id") if isinstance(payload, dict) else None
    if isinstance(value, str) and len(value) <= 64:
        try:
            return f"id:{uuid.UUID(value)}"
        except ValueError:
            pass
    sender = f"key:{source.key_id}" if source.key_id is not None else f"ip:{source.ip or ''}"
    return "sha256:" + hashlib.sha256(sender.encode() + b"\n" + encoded).hexdigest()


@dataclass(frozen=True, slots=True)
class QuarantineWrite:
    """The quarantine row of one refused payload; `new` is False for a resend."""

    id: int
    new: bool


_COLUMNS = (
    "dedupe_key",
    "attempts",
    "event_id",
    "event_type",
    "raw_payload",
    "raw_truncated",
    "reasons",
    "rule_ids",
    "source_key_id",
    "source_ip",
    "received_at",
    "last_seen_at",
    "status",
    "replay_count",
    "source",
    "translation",
)
_JSON_COLUMNS = frozenset({"reasons", "rule_ids", "translation"})
_TRANSLATION_TEXT_MAX = 512
_CHUNK = 500


def _upsert_sql(rows: int) -> str:
    """INSERT … ON CONFLICT (dedupe_key): a resend adds its attempts and moves last_seen_at;
    everything else (received_at above all: the intake rollups counted the row there) stays
    as first seen."""
    table = RejectedEvent._meta.db_table
    json_param = "CAST(%s AS jsonb)" if is_postgres() else "%s"
    one = ", ".join(json_param if name in _JSON_COLUMNS else "%s" for name in _COLUMNS)
    values = ", ".join([f"({one})"] * rows)
    return (
        f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT (dedupe_key) DO UPDATE SET attempts = {table}.attempts + "
        "excluded.attempts, last_seen_at = excluded.last_seen_at "
        "RETURNING id, dedupe_key, attempts"
    )


def rejected_events_upsert(
    items: Sequence[tuple[Any, list[FieldError]]],
    *,
    source: IngestSource,
    received_at: dt.datetime,
) -> list[QuarantineWrite]:
    """Keep refused payloads with their reasons, once per bad event: a payload already in
    quarantine (or twice in `items`) adds to the attempts of its row. One result per item, in
    order. Rows are written in key order, so concurrent resends cannot deadlock."""
    if not items:
        return []
    translation = _translation_json(source)
    keys: list[str] = []
    rows: dict[str, list[Any]] = {}
    for payload, errors in items:
        encoded = _raw_encode(payload)
        key = rejected_dedupe_key(payload, encoded, source)
        keys.append(key)
        if key in rows:
            rows[key][1] += 1
            continue
        raw_text, truncated = _raw_bound(encoded)
        rows[key] = [
            key,
            1,
            payload_text_field(payload, "event_id", 64),
            payload_text_field(payload, "event_type", 64),
            raw_text,
            truncated,
            orjson.dumps([error.as_dict() for error in errors]).decode(),
            orjson.dumps(sorted({e.rule_id for e in errors if e.rule_id is not None})).decode(),
            source.key_id,
            source.ip,
            received_at,
            received_at,
            RejectedEvent.Status.QUARANTINED,
            0,
            source.protocol,
            translation,
        ]
    written: dict[str, QuarantineWrite] = {}
    ordered = [rows[key] for key in sorted(rows)]
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            params = [sql_param(value) for row in chunk for value in row]
            cursor.execute(_upsert_sql(len(chunk)), params)
            for pk, key, attempts in cursor.fetchall():
                written[key] = QuarantineWrite(pk, attempts == rows[key][1])
    return [written[key] for key in keys]


def _translation_json(source: IngestSource) -> str | None:
    """The translation context as stored: text values, bounded and storable (`text_safe`),
    anything else left out; the request's User-Agent added (device type derives from it)."""
    if source.translation is None:
        return None
    kept = {
        name: text_safe(value, _TRANSLATION_TEXT_MAX)
        for name, value in {**source.translation, "user_agent": source.user_agent}.items()
        if isinstance(value, str) and value
    }
    return orjson.dumps(kept).decode()


def rejected_events_store(
    items: Sequence[tuple[Any, list[FieldError]]],
    *,
    source: IngestSource,
    received_at: dt.datetime,
) -> list[int]:
    """Keep refused payloads with their reasons (once per bad event). Returns their rows' ids
    in order."""
    return [
        write.id for write in rejected_events_upsert(items, source=source, received_at=received_at)
    ]


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
