"""The event validator used by ingestion and by the original README's Python API.

    from quality.validators import EventValidator
    result = EventValidator(strict_mode=True).validate_event(event_data)
    result.is_valid, result.errors, result.warnings

Layers: the schema layer (events.schema) first; then the stored quality rules, compiled once
per process (`quality.rulesets`). A rule of severity `error` makes the event invalid; a
`warning` is reported but the event is accepted (strict mode treats warnings as errors).
Each failed rule is a FieldError whose `rule` is the rule's name and `rule_id` its id.

Ingestion reaches this validator through `events.validation` (registered in
`QualityConfig.ready()`), so the events app never imports quality.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.utils import timezone

from events.schema import FieldError
from events.validation import Contexts, ValidationResult, event_schema_results
from quality.engine.rules import (
    CompiledRuleSet,
    RuleSpec,
    StoredFacts,
    ruleset_compile,
    ruleset_evaluate,
    ruleset_evaluated_counts,
)
from quality.rulesets import ruleset_current
from quality.selectors import StoredEventFacts
from quality.services.rules import validation_stats_record

__all__ = ["EventValidator", "ValidationBatch", "ValidationResult"]


class ValidationBatch(list):
    """The results of one batch (a plain list of ValidationResult, in input order), plus what
    the rules counters need: the rule set used and how many events each rule checked."""

    ruleset: CompiledRuleSet | None = None
    evaluated: dict[int, int] | None = None
    received_at: dt.datetime | None = None


def _without_resent(results: Sequence[ValidationResult], resent: frozenset[int]) -> ValidationBatch:
    kept = ValidationBatch(r for position, r in enumerate(results) if position not in resent)
    kept.ruleset = ruleset = getattr(results, "ruleset", None)
    kept.received_at = getattr(results, "received_at", None)
    kept.evaluated = {}
    if ruleset is not None and ruleset.rules:
        kept.evaluated = ruleset_evaluated_counts(ruleset, [result.row for result in kept])
    return kept


class EventValidator:
    """Validates events: schema first, then rules. Strict mode treats warnings as errors.

    `rules` pins a rule set (specs or compiled) instead of the stored, live one; `facts`
    replaces the database for rules that look at stored events (sessions, unique per day).
    """

    def __init__(
        self,
        strict_mode: bool = False,
        *,
        rules: CompiledRuleSet | Iterable[RuleSpec] | None = None,
        facts: StoredFacts | None = None,
    ) -> None:
        self.strict_mode = strict_mode
        self.max_future_skew = dt.timedelta(seconds=settings.INGEST_MAX_FUTURE_SKEW_SECONDS)
        if rules is not None and not isinstance(rules, CompiledRuleSet):
            rules = ruleset_compile(rules)
        self._rules = rules
        self._facts = facts

    def validate_event(
        self, event_data: Any, *, received_at: dt.datetime | None = None
    ) -> ValidationResult:
        return self.validate_batch([event_data], received_at=received_at)[0]

    def validate_batch(
        self,
        events: Sequence[Any],
        *,
        received_at: dt.datetime | None = None,
        contexts: Contexts = None,
        encoded: Sequence[bytes | None] | None = None,
    ) -> ValidationBatch:
        received_at = received_at or timezone.now()
        results = ValidationBatch(
            event_schema_results(
                events,
                received_at=received_at,
                max_future_skew=self.max_future_skew,
                contexts=contexts,
                encoded=encoded,
            )
        )
        ruleset = self.ruleset()
        results.ruleset, results.evaluated, results.received_at = ruleset, {}, received_at
        if ruleset.rules:
            self._apply_rules(ruleset, results, received_at)
        return results

    def stats_record(
        self,
        results: Sequence[ValidationResult],
        *,
        received_at: dt.datetime,
        resent: frozenset[int] = frozenset(),
    ) -> None:
        """Add a stored batch's outcomes to the per-rule counters (buffered; never raises).
        Resent events were counted when first seen: they are left out, checks included."""
        if resent:
            results = _without_resent(results, resent)
        validation_stats_record(results, received_at=received_at)

    def ruleset(self) -> CompiledRuleSet:
        if self._rules is not None:
            return self._rules
        return ruleset_current()

    def _facts_provider(self) -> StoredFacts:
        if self._facts is None:
            self._facts = StoredEventFacts()
        return self._facts

    def _apply_rules(
        self, ruleset: CompiledRuleSet, results: ValidationBatch, received_at: dt.datetime
    ) -> None:
        rows = [result.row for result in results]
        facts = self._facts_provider() if ruleset.batch_rules else None
        evaluation = ruleset_evaluate(ruleset, rows, received_at=received_at, facts=facts)
        results.evaluated = evaluation.evaluated
        strict = self.strict_mode
        for result, failures in zip(results, evaluation.failures, strict=True):
            for rule, message in failures:
                spec = rule.spec
                error = FieldError(spec.field, spec.name, message, spec.id, spec.severity)
                if spec.severity == "error" or strict:
                    result.errors.append(error)
                else:
                    result.warnings.append(error)
