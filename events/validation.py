"""How ingestion reaches the event validator without importing the app that provides it.

Ingestion (`events.services`) is the bottom layer: it must not import quality. It validates
through whatever validator was registered here at start-up. The quality app registers its
`EventValidator` (the schema layer, then the stored rules) in `QualityConfig.ready()`.

When nothing is registered (the events app used on its own), ingestion falls back to
`SchemaValidator`: the schema layer alone, which records no counters. So an event is never
stored unchecked, and adding the quality app only adds rules on top.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from events.derivation import NO_CONTEXT, ClientContext, row_derive
from events.schema import FieldError, validate_event_schema

# One context for a whole batch, or one per event (None: the batch's).
Contexts = ClientContext | Sequence[ClientContext | None] | None


@dataclass(slots=True)
class ValidationResult:
    """Outcome for one event. `row` is the normalized event (None if the schema refused it)."""

    row: dict[str, Any] | None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.errors


class BatchValidator(Protocol):
    """What ingestion needs of a validator: one verdict per event, then a place to count them."""

    def validate_batch(
        self,
        events: Sequence[Any],
        *,
        received_at: dt.datetime | None = None,
        contexts: Contexts = None,
        encoded: Sequence[bytes | None] | None = None,
    ) -> Sequence[ValidationResult]:
        """One result per event, in input order; device type and country left out are
        derived from `contexts` before the rules run. `encoded[i]`, when given, is event i
        as JSON (orjson's), already written by the caller (None: not plain JSON data)."""
        ...

    def stats_record(
        self,
        results: Sequence[ValidationResult],
        *,
        received_at: dt.datetime,
        resent: frozenset[int] = frozenset(),
    ) -> None:
        """Count a batch's outcomes once it is stored; never raises (counters must not cost
        an event). `resent`: positions of results whose event was already stored or
        quarantined (a duplicate or a resent bad event), which counters count once (ADR 0009)."""
        ...


def event_schema_results(
    events: Sequence[Any],
    *,
    received_at: dt.datetime,
    max_future_skew: dt.timedelta,
    contexts: Contexts = None,
    encoded: Sequence[bytes | None] | None = None,
) -> list[ValidationResult]:
    """The schema layer's verdict on each event, in input order, with device type and country
    derived (events.derivation) where the event left them out. `encoded`: as for
    `BatchValidator.validate_batch`."""
    results = []
    per_event = contexts is not None and not isinstance(contexts, ClientContext)
    batch_context = NO_CONTEXT if contexts is None or per_event else contexts
    for position, event_data in enumerate(events):
        schema = validate_event_schema(
            event_data,
            received_at=received_at,
            max_future_skew=max_future_skew,
            payload_json=None if encoded is None else encoded[position],
        )
        row = schema.row
        if row is not None:
            context = (contexts[position] or batch_context) if per_event else batch_context
            row_derive(row, context)
        # The schema layer's lists are new for each event: the result takes them over.
        results.append(ValidationResult(row, schema.errors, schema.warnings))
    return results


class SchemaValidator:
    """The schema layer alone: ingestion's validator when no other one is registered."""

    def __init__(self) -> None:
        self.max_future_skew = dt.timedelta(seconds=settings.INGEST_MAX_FUTURE_SKEW_SECONDS)

    def validate_batch(
        self,
        events: Sequence[Any],
        *,
        received_at: dt.datetime | None = None,
        contexts: Contexts = None,
        encoded: Sequence[bytes | None] | None = None,
    ) -> list[ValidationResult]:
        return event_schema_results(
            events,
            received_at=received_at or timezone.now(),
            max_future_skew=self.max_future_skew,
            contexts=contexts,
            encoded=encoded,
        )

    def stats_record(
        self,
        results: Sequence[ValidationResult],
        *,
        received_at: dt.datetime,
        resent: frozenset[int] = frozenset(),
    ) -> None:
        return None


# Made once per batch: validators read settings when made (tests override them).
ValidatorFactory = Callable[[], BatchValidator]
_validator_factory: ValidatorFactory = SchemaValidator


def validator_register(factory: ValidatorFactory) -> None:
    """Make ingestion validate with `factory()` from now on (the last registration wins).
    Called once at start-up, from an app's `ready()`."""
    global _validator_factory
    _validator_factory = factory


def validator_get() -> BatchValidator:
    """A validator for one batch: the registered one, or `SchemaValidator`."""
    return _validator_factory()
