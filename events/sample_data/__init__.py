"""Deterministic generator of realistic shop traffic.

This package's top level is the pure part (no database, no I/O): `catalog` (vocabularies,
bad-event kinds, products), `plan` (configuration, day/night rhythm, chunks), `chunks` (numpy
columns of one chunk), `payloads` (rows as API payloads). Writing is in `load` (direct to the
database, with `binary` COPY encoding) and `stream` (through a running API); import those
modules explicitly: they need Django set up.

Why vectorized: `generate_sample_data --events 10000000` must finish in minutes, so a chunk of
events is drawn as numpy columns (one array per field) rather than one Python object per event.
Only the few events that need it (bad ones, re-sent duplicates, and stream mode) become dicts.

Shape of the traffic:
- Sessions walk the funnel page_view -> product_view -> add_to_cart -> checkout_start -> purchase
  with nested drop-off (about 60% / 25% / 12% / 4% of sessions reach each step, less on mobile),
  plus searches and remove_from_cart.
- Users come back: each session picks a user of its country with a power law, so a minority of
  users has many sessions (new vs returning), mostly on their own usual device.
- Time: sessions start over the `days` before `end` with a day/night rhythm in each country's
  local time and a little more traffic on weekends. Nothing is later than `end`.
- A deterministic product catalog (product_id, category, price); purchases have an order_id and
  revenue == sum(price * quantity) over the order's items, in USD.
- A share of bad events (`bad_rate`), each tagged with its kind; kinds marked `rule_only` pass the
  schema layer and are for stored quality rules to catch. A share of good events is re-sent as an
  identical duplicate (`duplicate_rate`) and a few arrive hours late (`late_rate`).

Determinism: chunk k of a run draws from `numpy.random.default_rng([seed, k])`, so the same
(seed, events, days, end, chunk_events) gives the same events, event_ids included, whatever the
number of worker processes. The event_ids of a run come from a counter-based stream keyed by the
seed alone (`event_ids`), not from `end`: a second run with the same seed and --events re-sends
the same ids and stores nothing new, even minutes or days later.
"""

from events.sample_data.catalog import (
    BAD_KIND_BY_NAME,
    BAD_KINDS,
    CATEGORIES,
    FUNNEL_STEPS,
    RULE_ONLY_KINDS,
    BadKind,
    Product,
    product_catalog,
)
from events.sample_data.chunks import EventChunk, chunk_generate, event_ids
from events.sample_data.payloads import (
    SampleEvent,
    bad_payload,
    event_payload,
    malformed_event_id,
    sample_events,
)
from events.sample_data.plan import RunPlan, SampleConfig, default_end, run_plan

__all__ = [
    "BAD_KINDS",
    "BAD_KIND_BY_NAME",
    "CATEGORIES",
    "FUNNEL_STEPS",
    "RULE_ONLY_KINDS",
    "BadKind",
    "EventChunk",
    "Product",
    "RunPlan",
    "SampleConfig",
    "SampleEvent",
    "bad_payload",
    "chunk_generate",
    "default_end",
    "event_ids",
    "event_payload",
    "malformed_event_id",
    "product_catalog",
    "run_plan",
    "sample_events",
]
