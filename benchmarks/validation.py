"""Validation cost per event: the schema layer alone vs schema + 30 stored rules.

    ENVIRONMENT=development .venv/bin/python benchmarks/validation.py
    DATABASE_URL=postgres://... .venv/bin/python benchmarks/validation.py --with-db

Batches of --batch-size realistic events (the sample-data generator's traffic, 1% bad) go
through `EventValidator.validate_batch`, exactly as ingestion calls it:
1. schema layer only (no rules);
2. schema + 30 rules (the 18 defaults + 12 more), compiled once, as a worker process holds them;
   the two batch rules (session exists, order id unique per day) look stored events up in
   memory here, so this measures the engine;
3. with --with-db: the same, but the batch rules query PostgreSQL/SQLite (one query per rule
   per batch) through the real `StoredEventFacts`.
Prints events/s, µs per event, and the ratio to the schema layer. Best of --repeat runs, since
the machine is shared and noise only ever adds time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
os.environ.setdefault("ENVIRONMENT", "development")

import django  # noqa: E402

django.setup()

from quality.engine.rules import MemoryFacts, RuleSpec, ruleset_compile  # noqa: E402
from quality.services.defaults import DEFAULT_RULES  # noqa: E402
from quality.validators import EventValidator  # noqa: E402

# Rules beyond the 18 defaults, 30 in all: the figures compare the same rule count over time
# (a 90-day max_age left this list when the defaults gained their second max_age rule).
EXTRA_RULES = [
    ("country-allowed", "allowed_values", "country", {"values": ["US", "GB", "DE", "FR", "CA",
        "IN", "BR", "AU", "JP", "NL", "ES", "IT", "MX", "SE", "PL", "IE", "SG"]}),
    ("device-known", "allowed_values", "device_type", {"values": ["desktop", "mobile", "tablet"]}),
    ("user-id-format", "regex", "user_id", {"pattern": "^[A-Za-z0-9_\\-:.@]{1,128}$"}),
    ("session-id-format", "regex", "session_id", {"pattern": "^[A-Za-z0-9_\\-:.]{1,128}$"}),
    ("user-id-required", "required", "user_id", {}),
    ("session-id-required", "required", "session_id", {}),
    ("page-url-max-1024", "max_length", "page_url", {"max": 1024}),
    ("referrer-max-1024", "max_length", "referrer", {"max": 1024}),
    ("category-max-64", "max_length", "category", {"max": 64}),
    ("price-max-50000", "range", "price", {"max": 50000}),
    ("client-ts-not-in-future", "future_skew", "client_timestamp", {"seconds": 600}),
    ("currency-when-priced", "required_if", "currency",
        {"when_field": "event_type", "values": ["purchase"]}),
]  # fmt: skip


def rule_specs() -> list[RuleSpec]:
    specs = []
    for index, rule in enumerate(DEFAULT_RULES, start=1):
        specs.append(
            RuleSpec(
                id=index,
                name=rule["name"],
                kind=rule["kind"],
                field=rule["field"],
                params=rule["params"],
                severity=rule.get("severity", "error"),
                event_types=frozenset(rule.get("event_types", ())),
            )
        )
    for index, (name, kind, field, params) in enumerate(EXTRA_RULES, start=len(specs) + 1):
        specs.append(RuleSpec(index, name, kind, field, params, "warning"))
    return specs


def sample_batches(events: int, batch_size: int) -> tuple[list[list[dict]], dt.datetime]:
    from events import sample_data as gen

    end = gen.default_end(dt.datetime.now(dt.UTC))
    config = gen.SampleConfig(events=events, end=end, seed=42, days=1, bad_rate=0.01)
    payloads = [event.payload for event in gen.sample_events(config)][:events]
    batches = [payloads[i : i + batch_size] for i in range(0, len(payloads), batch_size)]
    return batches, end + dt.timedelta(minutes=1)


def measure(cases, batches, received_at, repeat: int) -> list[float]:
    """Best wall time per case over `repeat` rounds; the cases take turns within each round,
    so a burst of load from elsewhere on the machine hits them alike."""
    best = [float("inf")] * len(cases)
    for _ in range(repeat):
        for index, (_, validator) in enumerate(cases):
            started = time.perf_counter()
            for batch in batches:
                validator.validate_batch(batch, received_at=received_at)
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--with-db", action="store_true", help="batch rules query the database")
    args = parser.parse_args()

    batches, received_at = sample_batches(args.events, args.batch_size)
    # The pre-generated payloads are long-lived, like a worker's code and settings: keep them
    # out of the garbage collector's scans so it only sees what validation allocates.
    gc.collect()
    gc.freeze()
    specs = rule_specs()
    ruleset = ruleset_compile(specs)
    assert len(ruleset.rules) == 30, len(ruleset.rules)
    memory_facts = MemoryFacts([])
    cases = [
        ("schema layer only", EventValidator(rules=[], facts=memory_facts)),
        ("schema + 30 rules (engine)", EventValidator(rules=ruleset, facts=memory_facts)),
    ]
    if args.with_db:
        from quality.selectors import StoredEventFacts

        db_validator = EventValidator(rules=ruleset, facts=StoredEventFacts())
        cases.append(("schema + 30 rules (+DB lookups)", db_validator))

    print(
        f"{sum(len(b) for b in batches):,} events in batches of {args.batch_size}, "
        f"best of {args.repeat}; {len(ruleset.rules)} rules "
        f"({len(ruleset.batch_rules)} batch rules); python {sys.version.split()[0]}"
    )
    for _, validator in cases:
        validator.validate_batch(batches[0], received_at=received_at)  # warm up
    count = sum(len(batch) for batch in batches)
    best = measure(cases, batches, received_at, args.repeat)
    baseline_us = best[0] / count * 1e6
    rows = []
    for (label, _), seconds in zip(cases, best, strict=True):
        per_event_us = seconds / count * 1e6
        rows.append((label, count / seconds, per_event_us, per_event_us / baseline_us))
    print(f"{'':34}{'events/s':>12}{'µs/event':>11}{'vs schema':>11}")
    for label, rate, per_event, ratio in rows:
        print(f"{label:34}{rate:>12,.0f}{per_event:>11.2f}{ratio:>10.2f}x")
    print()
    for label, _, per_event, _ in rows[1:]:
        extra = per_event - rows[0][2]
        print(f"{label}: +{extra:.2f} µs/event over the schema layer ({extra / 30:.3f} per rule)")


if __name__ == "__main__":
    main()
