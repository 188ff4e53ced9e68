"""Rule definitions as the engine sees them: what a rule may check, how it is stored
(`RuleSpec`, mapped once from a database row), and what compiling produces (`CompiledRule`,
`CompiledRuleSet`). Plain frozen dataclasses: no ORM, no database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from events.schema import EVENT_TYPES

# The type key of every event name outside the seven e-commerce types (custom events): a rule
# for all types (empty event_types) applies to them too (ADR 0014).
CUSTOM_EVENTS = "*"
_KNOWN_TYPES = frozenset(EVENT_TYPES)
ALL_TYPE_KEYS = _KNOWN_TYPES | {CUSTOM_EVENTS}


def type_key(event_type: str) -> str:
    """The key rules are compiled under for an event of this type."""
    return event_type if event_type in _KNOWN_TYPES else CUSTOM_EVENTS


# Fields of a validated row (events.schema.EventSchema, after normalization).
STRING_FIELDS = frozenset(
    {
        "event_type",
        "user_id",
        "anonymous_id",
        "session_id",
        "device_type",
        "country",
        "page_url",
        "referrer",
        "product_id",
        "category",
        "currency",
        "order_id",
        "search_query",
    }
)
NUMBER_FIELDS = frozenset({"price", "quantity", "revenue"})
TIME_FIELDS = frozenset({"timestamp", "client_timestamp"})
ROW_FIELDS = STRING_FIELDS | NUMBER_FIELDS | TIME_FIELDS | {"event_id", "properties"}

ROW_KINDS = (
    "required",
    "regex",
    "range",
    "allowed_values",
    "max_length",
    "max_age",
    "future_skew",
    "revenue_matches",
    "required_if",
)
BATCH_KINDS = ("session_exists", "unique_per_day")
RULE_KINDS = ROW_KINDS + BATCH_KINDS

KIND_HELP = {
    "required": "field is present and not empty. params: {}",
    "regex": 'value matches a pattern. params: {"pattern": "^[A-Z]{3}$", "full_match": true}',
    "range": 'number within bounds. params: {"min": 0, "max": 10000} (either may be left out)',
    "allowed_values": 'value is one of a list. params: {"values": ["USD", "EUR"]}',
    "max_length": 'text at most N characters. params: {"max": 200}',
    "max_age": 'timestamp not older than N days before receipt. params: {"days": 30}',
    "future_skew": 'timestamp not after receipt by more than N s. params: {"seconds": 300}',
    "revenue_matches": "revenue == price * quantity within a tolerance. "
    'params: {"tolerance": 0.01, "relative_tolerance": 0.0}',
    "required_if": "field required when another field has one of some values. "
    'params: {"when_field": "event_type", "values": ["purchase"]}',
    "session_exists": "the event's session was seen before (stored, or earlier in the batch). "
    'params: {"lookback_days": 7}',
    "unique_per_day": "no other event has this value on the same UTC day. params: {}",
}


class RuleParamError(ValueError):
    """Invalid rule definition; `param_field` names the form field to show it on."""

    def __init__(self, message: str, param_field: str = "params") -> None:
        super().__init__(message)
        self.param_field = param_field


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as stored, detached from the ORM. Empty event_types means all types."""

    id: int
    name: str
    kind: str
    field: str
    params: Mapping[str, Any]
    severity: str = "error"
    event_types: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RowCode:
    """A row rule as Python source, inlined into the rule set's generated evaluator.

    `lines` run once per event with `row` bound; `setup` once per batch with `received_at`.
    In both, `@` stands for this rule's unique suffix (its constants are `NAME@` in `consts`),
    and `FAIL(message)` records a failure. Inlining instead of one closure call per rule per
    event is what keeps 30 rules close to the cost of the schema layer.
    """

    lines: tuple[str, ...]
    consts: Mapping[str, Any]
    setup: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledRule:
    spec: RuleSpec
    code: RowCode | None  # None for batch kinds
    types: frozenset[str]  # event types it applies to (expanded)

    @property
    def id(self) -> int:
        return self.spec.id


Evaluator = Callable[[Sequence[Any], list, dt.datetime], None]


def evaluate_nothing(rows: Sequence[Any], failures: list, received_at: dt.datetime) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CompiledRuleSet:
    version: object
    rules: tuple[CompiledRule, ...]
    row_rules_by_type: Mapping[str, tuple[CompiledRule, ...]]
    batch_rules: tuple[CompiledRule, ...]
    evaluate_rows: Evaluator = evaluate_nothing
    # event type -> ids of every rule (row or batch) that checks events of that type; None
    # when two rules share an id (unsaved specs), which counting by id cannot tell apart
    rule_ids_by_type: Mapping[str, tuple[int, ...]] | None = None
    rule_ids: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.rules)

    def rules_for(self, event_type: str) -> tuple[CompiledRule, ...]:
        return self.row_rules_by_type.get(event_type, ())


EMPTY_RULESET = CompiledRuleSet(None, (), {}, ())
