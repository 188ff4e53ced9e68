"""Plant a scenario (events.sample_data.scenarios): generate one hour of clean traffic that
continues a run, break it, and send it through the ingestion service with its receipt times,
exactly as the API would store it. Needs Django set up."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace

from events.sample_data.payloads import sample_events
from events.sample_data.plan import SampleConfig
from events.sample_data.scenarios import HOUR_MS, Item, scenario_apply
from events.services import IngestSource, event_batch_ingest

INGEST_BATCH = 1000
SEED_OFFSET = 1_000_003  # the hour's event ids must not repeat the history's (seed-keyed)


def history_config(config: SampleConfig) -> SampleConfig:
    """The run before a planted hour: the same traffic, ending an hour before `end`."""
    per_hour = config.events / (config.days * 24)
    return replace(
        config,
        events=max(0, config.events - round(per_hour)),
        end=config.end - dt.timedelta(hours=1),
    )


def hour_items(config: SampleConfig, start: dt.datetime) -> list[Item]:
    """Clean traffic of [start, start + 1 h) at the run's rate (received by the hour's end),
    from a one-day run that ends with that hour; duplicates and bad events at the run's rates."""
    day = replace(
        config,
        events=round(config.events / config.days),
        end=start + dt.timedelta(hours=1),
        days=1,
        seed=config.seed + SEED_OFFSET,
    )
    start_ms = int(start.timestamp() * 1000)
    end_ms = start_ms + HOUR_MS
    items = []
    for event in sample_events(day):
        at_ms = _stamp_ms(event.payload.get("timestamp"), event.received_ms)
        if start_ms <= at_ms < end_ms and event.received_ms < end_ms:
            items.append((max(event.received_ms, start_ms), event.payload))
    return items


def _stamp_ms(stamp: object, fallback: int) -> int:
    """An event's time in ms; a bad event's broken timestamp places it at its receipt."""
    try:
        moment = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return fallback
    if moment.tzinfo is None:
        return fallback
    return int(moment.timestamp() * 1000)


def scenario_hour(config: SampleConfig, name: str, start: dt.datetime) -> list[Item]:
    """The hour starting at `start` as received under scenario `name`."""
    start_ms = int(start.timestamp() * 1000)
    return scenario_apply(name, hour_items(config, start), seed=config.seed, start_ms=start_ms)


def items_ingest(items: list[Item]) -> Counter[str]:
    """Send (received_ms, payload) items through `event_batch_ingest`, one call per minute of
    receipt (received_at = that minute's last arrival). Returns outcome counts."""
    source = IngestSource(key_id=None, ip="127.0.0.1")
    outcomes: Counter[str] = Counter()
    group: list[Item] = []
    for item in sorted(items, key=lambda item: item[0]):
        if group and (item[0] // 60_000 != group[0][0] // 60_000 or len(group) >= INGEST_BATCH):
            outcomes.update(_send(group, source))
            group = []
        group.append(item)
    if group:
        outcomes.update(_send(group, source))
    return outcomes


def _send(group: list[Item], source: IngestSource) -> list[str]:
    received_at = dt.datetime.fromtimestamp(group[-1][0] / 1000, tz=dt.UTC)
    results = event_batch_ingest(
        [payload for _, payload in group], source=source, received_at=received_at
    )
    return [result.status for result in results]
