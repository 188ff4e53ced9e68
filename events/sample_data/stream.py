"""Streaming generated events live through a running API (`--stream --rate --duration`)."""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
import requests

from events.sample_data.payloads import SampleEvent, sample_events
from events.sample_data.plan import SampleConfig, default_end

# --- streaming through the HTTP API ------------------------------------------------------


@dataclass
class StreamSummary:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: int = 0  # HTTP errors other than a rejected event, and connection failures
    elapsed: float = 0.0


def _shift_timestamp(payload: dict[str, Any], delta_ms: int) -> dict[str, Any]:
    """Move a payload's timestamp by delta_ms (left alone when missing or unparseable)."""
    value = payload.get("timestamp")
    if not isinstance(value, str):
        return payload
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return payload
    shifted = moment + dt.timedelta(milliseconds=delta_ms)
    payload["timestamp"] = shifted.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return payload


def stream_payloads(config: SampleConfig) -> Iterable[tuple[SampleEvent, int]]:
    """Payloads in sending order with the generated arrival time of each (ms)."""
    for event in sample_events(config):
        yield event, event.received_ms


def sample_data_stream(
    config: SampleConfig,
    *,
    url: str,
    rate: float,
    duration: float,
    batch_size: int = 1,
    api_key: str | None = None,
    out: TextIO = sys.stdout,
    max_error_lines: int = 20,
) -> StreamSummary:
    """Send generated events live to POST /events (or /events/batch), `rate` events per second
    for at most `duration` seconds, with timestamps moved to the moment of sending.

    The loop is bounded by both the duration and the number of events generated for it, so it
    always stops by itself. Bad events are sent too (the API rejects them with 400 or in the
    batch results); duplicates re-send an earlier event unchanged.
    """
    session = requests.Session()
    session.headers["Content-Type"] = "application/json"
    if api_key:
        session.headers["Authorization"] = f"Bearer {api_key}"
    base = url.rstrip("/")
    endpoint = f"{base}/events/batch" if batch_size > 1 else f"{base}/events"
    summary = StreamSummary()
    error_lines = 0
    started = time.monotonic()
    deadline = started + duration
    sent_copies: dict[str, dict[str, Any]] = {}
    batch: list[dict[str, Any]] = []
    last_report = started

    def report_error(text: str) -> None:
        nonlocal error_lines
        error_lines += 1
        if error_lines <= max_error_lines:
            out.write(text[:300] + "\n")
        elif error_lines == max_error_lines + 1:
            out.write("... (further errors are counted, not printed)\n")

    def send(events: list[dict[str, Any]]) -> None:
        body = {"events": events} if batch_size > 1 else events[0]
        try:
            response = session.post(endpoint, data=orjson.dumps(body), timeout=10)
        except requests.RequestException as exc:
            summary.errors += len(events)
            report_error(f"request failed: {exc}")
            return
        summary.sent += len(events)
        if batch_size > 1 and response.status_code == 200:
            data = response.json()
            summary.accepted += data.get("accepted", 0)
            summary.duplicates += data.get("duplicates", 0)
            summary.rejected += data.get("rejected", 0)
            return
        if response.status_code == 201:
            summary.accepted += 1
        elif response.status_code == 200:
            summary.duplicates += 1
        elif response.status_code == 400 and batch_size == 1:
            summary.rejected += 1
            report_error(f"400 rejected: {response.text}")
        else:
            summary.errors += len(events)
            report_error(f"HTTP {response.status_code}: {response.text}")

    for sent_index, (event, generated_ms) in enumerate(stream_payloads(config)):
        due = started + sent_index / rate
        now = time.monotonic()
        if due >= deadline or now >= deadline:
            break
        if due > now:
            time.sleep(due - now)
        payload = event.payload
        event_id = str(payload.get("event_id"))
        if event.duplicate and event_id in sent_copies:
            payload = sent_copies[event_id]
        else:
            now_ms = int(time.time() * 1000)
            payload = _shift_timestamp(dict(payload), now_ms - generated_ms)
            if event.is_good:
                sent_copies[event_id] = payload
        batch.append(payload)
        if len(batch) >= batch_size:
            send(batch)
            batch = []
        if time.monotonic() - last_report >= 1.0:
            last_report = time.monotonic()
            out.write(
                f"sent {summary.sent:,}  accepted {summary.accepted:,}  "
                f"duplicates {summary.duplicates:,}  rejected {summary.rejected:,}  "
                f"errors {summary.errors:,}\n"
            )
    if batch:
        send(batch)
    summary.elapsed = time.monotonic() - started
    return summary


def stream_config(seed: int, rate: float, duration: float, **rates: float) -> SampleConfig:
    """Enough events for `rate` x `duration`, anchored now (timestamps are moved when sent)."""
    events = max(1, math.ceil(rate * duration))
    return SampleConfig(
        events=events, end=default_end(dt.datetime.now(dt.UTC)), seed=seed, days=1, **rates
    )
