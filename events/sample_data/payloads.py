"""Chunk rows as the API's JSON payloads (good and bad), for the ingestion service and the
stream mode."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from events.sample_data.catalog import (
    _MISSING_CANDIDATES,
    BAD_KINDS,
    COUNTRY_CODES,
    CURRENCY,
    DEVICES,
)
from events.sample_data.chunks import UTM_PROPERTIES, EventChunk, _vocab, chunk_generate
from events.sample_data.plan import SampleConfig, run_plan
from events.schema import EVENT_TYPES

# --- rows and payloads -------------------------------------------------------------------


def uuid_text(raw: np.ndarray) -> str:
    return str(uuid.UUID(bytes=raw.tobytes()))


def _iso(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money(cents: int) -> float:
    """Cents as a JSON number with two decimals (the float's repr is exact to the cent)."""
    return round(cents / 100, 2)


def user_id_text(user: int) -> str:
    return f"user_{user:07d}"


def event_properties(chunk: EventChunk, row: int) -> dict[str, Any]:
    if row in chunk.order_items:
        vocab = _vocab()
        return {
            "items": [
                {
                    "product_id": vocab.products[product].product_id,
                    "price": _money(vocab.products[product].price_cents),
                    "quantity": quantity,
                }
                for product, quantity in chunk.order_items[row]
            ]
        }
    if chunk.utm[row] >= 0:
        return dict(UTM_PROPERTIES[chunk.utm[row]])
    return {}


def event_payload(chunk: EventChunk, row: int) -> dict[str, Any]:
    """The wire-format event (as a client would POST it) of one generated row, before any
    bad-event mutation."""
    vocab = _vocab()
    event_type = int(chunk.event_type[row])
    payload: dict[str, Any] = {
        "event_id": uuid_text(chunk.event_id[row]),
        "event_type": EVENT_TYPES[event_type],
        "timestamp": _iso(int(chunk.ts_ms[row])),
        "user_id": user_id_text(int(chunk.user[row])),
        "session_id": chunk.session_ids[chunk.session[row]],
        "device_type": DEVICES[chunk.device[row]],
        "country": COUNTRY_CODES[chunk.country[row]],
        "page_url": vocab.pages[chunk.page[row]],
    }
    referrer = vocab.referrers[chunk.referrer[row]]
    if referrer:
        payload["referrer"] = referrer
    product = int(chunk.product[row])
    if product >= 0:
        payload["product_id"] = vocab.products[product].product_id
        payload["category"] = vocab.products[product].category
        payload["currency"] = CURRENCY
    if chunk.price_cents[row] >= 0:
        payload["price"] = _money(int(chunk.price_cents[row]))
    if chunk.quantity[row] > 0:
        payload["quantity"] = int(chunk.quantity[row])
    if chunk.order[row] >= 0:
        payload["order_id"] = chunk.order_ids[chunk.order[row]]
        payload["revenue"] = _money(int(chunk.revenue_cents[row]))
    if chunk.search[row] >= 0:
        payload["search_query"] = vocab.searches[chunk.search[row]]
    properties = event_properties(chunk, row)
    if properties:
        payload["properties"] = properties
    return payload


def bad_payload(chunk: EventChunk, row: int) -> dict[str, Any]:
    """The payload of a bad row: its good payload broken in the way of its kind."""
    kind = BAD_KINDS[chunk.bad_kind[row]]
    payload = event_payload(chunk, row)
    variant = int(chunk.bad_seed[row])
    received_ms = int(chunk.resend_ms[row])
    match kind.name:
        case "invalid_country":
            payload["country"] = ("XX", "ZZ", "Germany", "usa", "U5")[variant % 5]
        case "missing_field":
            candidates = _MISSING_CANDIDATES[int(chunk.event_type[row])]
            payload.pop(candidates[variant % len(candidates)], None)
        case "negative_quantity":
            payload["quantity"] = -(1 + variant % 3)
        case "future_timestamp":
            # At least 2 h after receipt, so it stays in the future for the whole hour batch.
            payload["timestamp"] = _iso(received_ms + 7_200_000 + variant % (46 * 3_600_000))
        case "invalid_device":
            payload["device_type"] = ("smartwatch", "Mobile", "tv", "")[variant % 4]
        case "invalid_event_name":
            # Any printable name is a custom event (ADR 0014); these are not names.
            payload["event_type"] = ("", " page_view", "add\tto_cart", "x" * 129)[variant % 4]
        case "malformed_event_id":
            payload["event_id"] = malformed_event_id(payload["event_id"])
        case "bad_timestamp_format":
            moment = dt.datetime.fromtimestamp(int(chunk.ts_ms[row]) / 1000, tz=dt.UTC)
            payload["timestamp"] = (
                moment.strftime("%d/%m/%Y %H:%M"),
                moment.strftime("%Y-%m-%dT25:%M:%SZ"),
                "yesterday",
            )[variant % 3]
        case "negative_price":
            payload["price"] = -payload.get("price", 9.99)
        case "too_long":
            payload["user_id"] = "user_" + "x" * (130 + variant % 200)
        case "invalid_currency":
            payload["currency"] = ("usd", "DOLLAR", "€")[variant % 3]
        case "revenue_mismatch":
            price = payload.get("price") or event_properties(chunk, row)["items"][0]["price"]
            payload["price"] = price
            payload["quantity"] = 1
            cents = round(price * 100)
            payload["revenue"] = _money(cents + 500 + variant % 10_000)
        case "stale_timestamp":
            # A device clock reset: 12 to 40 years before receipt (never before 1970 here).
            payload["timestamp"] = _iso(received_ms - (4400 + variant % 10_000) * 86_400_000)
        case "orphan_checkout":
            payload["session_id"] = f"sess_orphan_{payload['event_id'].replace('-', '')[:16]}"
    return payload


def malformed_event_id(event_id: str) -> str:
    """The not-a-UUID id a `malformed_event_id` bad event carries instead of `event_id`."""
    return f"evt-{event_id.replace('-', '')[:20]}"


@dataclass(frozen=True, slots=True)
class SampleEvent:
    """One event as sent, with what the generator knows about it (for tests and quality)."""

    payload: dict[str, Any]
    kind: str | None  # None: good; else a BadKind name
    rule_only: bool
    late: bool
    duplicate: bool  # True for the second, re-sent copy of a good event
    received_ms: int

    @property
    def is_good(self) -> bool:
        return self.kind is None


def chunk_events(chunk: EventChunk) -> Iterator[SampleEvent]:
    """Every event of a chunk as payloads, duplicates right after their originals."""
    for row in range(len(chunk)):
        kind_index = int(chunk.bad_kind[row])
        if kind_index >= 0:
            kind = BAD_KINDS[kind_index]
            yield SampleEvent(
                bad_payload(chunk, row), kind.name, kind.rule_only, False, False,
                int(chunk.resend_ms[row]),
            )  # fmt: skip
            continue
        payload = event_payload(chunk, row)
        late = bool(chunk.late[row])
        yield SampleEvent(payload, None, False, late, False, int(chunk.received_ms[row]))
        if chunk.duplicate[row]:
            yield SampleEvent(dict(payload), None, False, late, True, int(chunk.resend_ms[row]))


def sample_events(config: SampleConfig) -> Iterator[SampleEvent]:
    """All events of a run as payloads (fine for thousands; the loader uses the columns)."""
    plan = run_plan(config)
    for chunk in range(config.chunk_count):
        yield from chunk_events(chunk_generate(plan, chunk))
