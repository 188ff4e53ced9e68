"""Planted incidents: one hour of generated traffic, broken in the way of a real incident.

`generate_sample_data --scenario NAME` plants one in the last hour before --end, so a demo can
show it, and `benchmarks/quality_detection.py` plants each in turn to measure whether the default
checks catch it. Pure: a scenario maps the hour's clean (received_ms, payload) pairs to what
the server receives instead; `events.sample_data.incident` sends them through ingestion.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Item = tuple[int, dict[str, Any]]  # (received_ms, payload)
HOUR_MS = 3_600_000
BOT_USER = "u_bot_crawler"
BROKEN_CLIENT = "5.2.0"
GONE_COUNTRY = "GB"  # 10% of sessions: big enough to matter, small enough to hide in totals


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    apply: Callable[[list[Item], np.random.Generator, int], list[Item]]


def _new_id(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _keep(share: float) -> Callable[[list[Item], np.random.Generator, int], list[Item]]:
    def apply(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
        return [item for item in items if rng.random() < share]

    return apply


def _null_category(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    out = []
    for received, payload in items:
        if payload.get("event_type") == "product_view" and rng.random() < 0.3:
            payload = {key: value for key, value in payload.items() if key != "category"}
        out.append((received, payload))
    return out


def _tablets(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    return [(r, {**p, "device_type": "tablet"} if rng.random() < 0.9 else p) for r, p in items]


def _resent(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    """5% sent again under a new event_id (a retry that regenerates the id): the server cannot
    dedupe them; the content key (session, type, product, timestamp) repeats."""
    out = list(items)
    for received, payload in items:
        if rng.random() < 0.05:
            out.append((received + 2000, {**payload, "event_id": _new_id(rng)}))
    return out


def _no_checkout(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    return [(r, p) for r, p in items if p.get("event_type") != "checkout_start"]


def _silence(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    """Nothing received for the first 30 minutes of the hour (a tracker or gateway down)."""
    return [(r, p) for r, p in items if r >= start_ms + HOUR_MS // 2]


def _invalid(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    """5% of the hour's events fail the schema (a release that drops event_type; a missing
    session_id is no longer one: the server derives it)."""
    out = []
    for received, payload in items:
        if rng.random() < 0.05:
            payload = {key: value for key, value in payload.items() if key != "event_type"}
        out.append((received, payload))
    return out


def _scale_money(payload: dict[str, Any], factor: int) -> dict[str, Any]:
    payload = dict(payload)
    for key in ("price", "revenue"):
        if payload.get(key) is not None:
            payload[key] = round(payload[key] * factor, 2)
    return payload


def _cents(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    return [(r, _scale_money(p, 100)) for r, p in items]


def _currency(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    """Amounts unchanged, currency switched (a storefront default changed to EUR)."""
    return [(r, {**p, "currency": "EUR"} if "currency" in p else p) for r, p in items]


def _country_gone(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    return [(r, p) for r, p in items if p.get("country") != GONE_COUNTRY]


def _bot(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    """One user (a crawler with a login) adds a quarter on top: 20% of the hour's traffic."""
    if not items:
        return items
    out = list(items)
    count = len(items) // 4
    for index, offset in enumerate(sorted(rng.integers(0, HOUR_MS, size=count))):
        moment = start_ms + int(offset)
        out.append((moment + 150, _bot_event(rng, moment, index)))
    return out


def _bot_event(rng: np.random.Generator, moment_ms: int, index: int) -> dict[str, Any]:
    stamp = np.datetime64(moment_ms, "ms").astype(str) + "Z"
    return {
        "event_id": _new_id(rng),
        "event_type": "page_view",
        "timestamp": stamp,
        "user_id": BOT_USER,
        "session_id": f"s_bot_{moment_ms // 1_800_000}",  # a new session every 30 minutes
        "device_type": "desktop",
        "country": "US",
        "page_url": f"/products/{index % 500}",
    }


def _late_batch(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    """A batch of a third of an hour's events from 3 hours earlier (an offline queue or a
    stuck forwarder), all arriving 5 minutes into the hour, on top of the normal traffic."""
    out = list(items)
    arrival = start_ms + 5 * 60_000
    for _received, payload in items[::3]:
        late = copy.deepcopy(payload)
        late["event_id"] = _new_id(rng)
        late["timestamp"] = _shift(late["timestamp"], -3 * HOUR_MS)
        out.append((arrival, late))
    return out


def _shift(iso: str, delta_ms: int) -> str:
    moment = np.datetime64(iso.rstrip("Z"), "ms") + np.timedelta64(delta_ms, "ms")
    return moment.astype(str) + "Z"


def _wrong_type(items: list[Item], rng: np.random.Generator, start_ms: int) -> list[Item]:
    """App version 5.2.0 (a fifth of mobile traffic) sends user_id as a number: the schema
    refuses every one of its events."""
    out = []
    for received, payload in items:
        if payload.get("device_type") == "mobile" and rng.random() < 0.2:
            digits = "".join(ch for ch in str(payload.get("user_id", "")) if ch.isdigit())
            payload = {
                **payload,
                "user_id": int(digits or 0),
                "properties": {**payload.get("properties", {}), "app_version": BROKEN_CLIENT},
            }
        out.append((received, payload))
    return out


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("volume-drop", "volume down to 10%", _keep(0.10)),
        Scenario("category-missing", "30% of product views without category", _null_category),
        Scenario("device-tablet", "device mix 90% tablet", _tablets),
        Scenario("resent-new-ids", "5% re-sent under new event ids", _resent),
        Scenario("checkout-missing", "purchases without checkout_start", _no_checkout),
        Scenario("silence-30m", "no events for 30 minutes", _silence),
        Scenario("invalid-events", "5% of the hour's events invalid", _invalid),
        Scenario("prices-in-cents", "prices and revenue sent in cents", _cents),
        Scenario("currency-switch", "currency switched from USD to EUR", _currency),
        Scenario("country-missing", f"country {GONE_COUNTRY} disappears", _country_gone),
        Scenario("bot-traffic", "one user (a bot) sends 20% of traffic", _bot),
        Scenario("late-batch", "a batch arrives 3 hours behind", _late_batch),
        Scenario("wrong-type", f"app {BROKEN_CLIENT} sends user_id as a number", _wrong_type),
    )
}


def scenario_apply(name: str, items: list[Item], *, seed: int, start_ms: int) -> list[Item]:
    """The hour as received under scenario `name`, sorted by receipt time."""
    rng = np.random.default_rng([seed, 7_000_003])
    planted = SCENARIOS[name].apply([(r, dict(p)) for r, p in items], rng, start_ms)
    return sorted(planted, key=lambda item: item[0])
