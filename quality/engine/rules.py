"""Row-level quality rules: parameter validation, compilation, and batch evaluation.

Pure Python, no ORM. A `RuleSpec` (mapped once from a database row) is compiled into a
closure with everything precomputed (regex objects, frozensets, Decimal bounds); a ruleset
groups the closures by event type, so evaluating an event is a dict lookup and a few calls.
Rules that need stored data (a session that exists, a value unique per day) are evaluated per
batch through a `StoredFacts` provider: one lookup per batch, never one per event.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

EVENT_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout_start",
    "purchase",
)

# Fields of a validated row (events.schema.EventSchema, after normalization).
STRING_FIELDS = frozenset(
    {
        "event_type",
        "user_id",
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


RowCheck = Callable[[dict[str, Any], dt.datetime], "str | None"]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    spec: RuleSpec
    check: RowCheck | None  # None for batch kinds
    types: frozenset[str]  # event types it applies to (expanded)

    @property
    def id(self) -> int:
        return self.spec.id


@dataclass(frozen=True, slots=True)
class CompiledRuleSet:
    version: object
    rules: tuple[CompiledRule, ...]
    row_rules_by_type: Mapping[str, tuple[CompiledRule, ...]]
    batch_rules: tuple[CompiledRule, ...]

    def __len__(self) -> int:
        return len(self.rules)

    def rules_for(self, event_type: str) -> tuple[CompiledRule, ...]:
        return self.row_rules_by_type.get(event_type, ())


EMPTY_RULESET = CompiledRuleSet(None, (), {}, ())


class StoredFacts(Protocol):
    """Stored-event lookups that batch rules need; one call per rule per batch."""

    def sessions_existing(self, session_ids: set[str], since: dt.datetime) -> set[str]: ...

    def values_on_days(
        self,
        field: str,
        values: set[str],
        event_types: frozenset[str],
        start: dt.datetime,
        end: dt.datetime,
    ) -> set[tuple[str, dt.date, str]]:
        """(value, UTC day, event_id) of stored events with one of the values in [start, end)."""
        ...


class NoStoredFacts:
    """Facts provider for pure validation with nothing stored (no database)."""

    def sessions_existing(self, session_ids: set[str], since: dt.datetime) -> set[str]:
        return set()

    def values_on_days(self, field, values, event_types, start, end):
        return set()


class MemoryFacts:
    """Facts over a list of rows held in memory (tests, and trying rules on a sample)."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.rows = list(rows)

    def sessions_existing(self, session_ids: set[str], since: dt.datetime) -> set[str]:
        return {
            row["session_id"]
            for row in self.rows
            if row.get("session_id") in session_ids and row["timestamp"] >= since
        }

    def values_on_days(self, field, values, event_types, start, end):
        found = set()
        for row in self.rows:
            value = row.get(field)
            if value not in values or not start <= row["timestamp"] < end:
                continue
            if event_types and row.get("event_type") not in event_types:
                continue
            found.add((value, row["timestamp"].astimezone(dt.UTC).date(), str(row["event_id"])))
        return found


# --- field access -------------------------------------------------------------------------


def _getter(field_name: str) -> Callable[[Mapping[str, Any]], Any]:
    if field_name.startswith("properties."):
        key = field_name.removeprefix("properties.")
        return lambda row: (row.get("properties") or {}).get(key)
    return lambda row: row.get(field_name)


def _validate_field(field_name: str, allowed: frozenset[str] | None = None) -> None:
    is_property = field_name.startswith("properties.") and len(field_name) > len("properties.")
    if is_property and (allowed is None or "properties.*" in allowed):
        return
    if field_name in (allowed if allowed is not None else ROW_FIELDS):
        return
    choices = ", ".join(sorted(allowed if allowed is not None else ROW_FIELDS))
    raise RuleParamError(f"Unknown field {field_name!r}; use one of: {choices}.", "field")


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == {}


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, float | str):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _param_number(params: Mapping[str, Any], key: str, *, required: bool = False) -> Decimal | None:
    if key not in params or params[key] is None:
        if required:
            raise RuleParamError(f"Parameter {key!r} is required.")
        return None
    number = _number(params[key])
    if number is None:
        raise RuleParamError(f"Parameter {key!r} must be a number, not {params[key]!r}.")
    return number


def _unknown_params(params: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise RuleParamError(
            f"Unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}."
        )


# --- one compiler per kind ------------------------------------------------------------------


def _compile_required(spec: RuleSpec) -> RowCheck:
    _unknown_params(spec.params, set())
    get = _getter(spec.field)

    def check(row: dict[str, Any], received_at: dt.datetime) -> str | None:
        return "is required and may not be empty" if _is_empty(get(row)) else None

    return check


def _compile_regex(spec: RuleSpec) -> RowCheck:
    _unknown_params(spec.params, {"pattern", "full_match", "ignore_case"})
    pattern = spec.params.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise RuleParamError("Parameter 'pattern' must be a non-empty regular expression.")
    flags = re.IGNORECASE if spec.params.get("ignore_case") else 0
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise RuleParamError(f"Invalid regular expression {pattern!r}: {exc}.") from None
    match = compiled.fullmatch if spec.params.get("full_match", True) else compiled.search
    get = _getter(spec.field)
    message = f"does not match the pattern {pattern}"

    def check(row: dict[str, Any], received_at: dt.datetime) -> str | None:
        value = get(row)
        if value is None or value == "":
            return None  # absence is the `required` kind's business
        return None if match(value if isinstance(value, str) else str(value)) else message

    return check


def _compile_range(spec: RuleSpec) -> RowCheck:
    _unknown_params(spec.params, {"min", "max"})
    low = _param_number(spec.params, "min")
    high = _param_number(spec.params, "max")
    if low is None and high is None:
        raise RuleParamError("Give 'min', 'max' or both.")
    if low is not None and high is not None and low > high:
        raise RuleParamError(f"'min' ({low}) must not be greater than 'max' ({high}).")
    get = _getter(spec.field)
    if low is not None and high is not None:
        message = f"must be between {low} and {high}"
    elif low is not None:
        message = f"must be at least {low}"
    else:
        message = f"must be at most {high}"

    def check(row: dict[str, Any], received_at: dt.datetime) -> str | None:
        value = get(row)
        if value is None or value == "":
            return None
        if not isinstance(value, int | Decimal) or isinstance(value, bool):
            value = _number(value)
            if value is None:
                return "must be a number"
        if (low is not None and value < low) or (high is not None and value > high):
            return message
        return None

    return check


def _compile_allowed_values(spec: RuleSpec) -> RowCheck:
    _unknown_params(spec.params, {"values"})
    values = spec.params.get("values")
    if not isinstance(values, list) or not values:
        raise RuleParamError("Parameter 'values' must be a non-empty list.")
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        raise RuleParamError("'values' may hold only strings and numbers.")
    allowed = frozenset(values) | frozenset(str(v) for v in values)
    shown = ", ".join(str(v) for v in values[:10]) + (" …" if len(values) > 10 else "")
    message = f"must be one of: {shown}"
    get = _getter(spec.field)

    def check(row: dict[str, Any], received_at: dt.datetime) -> str | None:
        value = get(row)
        if value is None or value == "":
            return None
        try:
            return None if value in allowed else message
        except TypeError:  # unhashable (a list or dict in properties)
            return message

    return check


def _compile_max_length(spec: RuleSpec) -> RowCheck:
    _unknown_params(spec.params, {"max"})
    limit = spec.params.get("max")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise RuleParamError("Parameter 'max' must be a whole number >= 0.")
    get = _getter(spec.field)
    message = f"must be at most {limit} characters"

    def check(row: dict[str, Any], received_at: dt.datetime) -> str | None:
        value = get(row)
        if value is None:
            return None
        return message if len(value if isinstance(value, str) else str(value)) > limit else None

    return check


def _time_field(spec: RuleSpec) -> None:
    if spec.field not in TIME_FIELDS:
        raise RuleParamError(
            f"This kind needs a time field: {', '.join(sorted(TIME_FIELDS))}.", "field"
        )


def _compile_max_age(spec: RuleSpec) -> RowCheck:
    _unknown_params(spec.params, {"days"})
    _time_field(spec)
    days = _param_number(spec.params, "days", required=True)
    if days <= 0:
        raise RuleParamError("'days' must be greater than 0.")
    age = dt.timedelta(days=float(days))
    name = spec.field
    message = f"is more than {days} days before the time it was received"

    def check(row: dict[str, Any], received_at: dt.datetime) -> str | None:
        value = row.get(name)
        return message if value is not None and received_at - value > age else None

    return check


def _compile_future_skew(spec: RuleSpec) -> RowCheck:
    _unknown_params(spec.params, {"seconds"})
    _time_field(spec)
    seconds = _param_number(spec.params, "seconds", required=True)
    if seconds < 0:
        raise RuleParamError("'seconds' must be 0 or more.")
    skew = dt.timedelta(seconds=float(seconds))
    name = spec.field
    message = f"is more than {seconds} s in the future"

    def check(row: dict[str, Any], received_at: dt.datetime) -> str | None:
        value = row.get(name)
        return message if value is not None and value - received_at > skew else None

    return check


def _compile_revenue_matches(spec: RuleSpec) -> RowCheck:
    allowed = {"tolerance", "relative_tolerance", "price_field", "quantity_field"}
    _unknown_params(spec.params, allowed)
    tolerance = _param_number(spec.params, "tolerance") or Decimal("0.01")
    relative = _param_number(spec.params, "relative_tolerance") or Decimal(0)
    if tolerance < 0 or relative < 0:
        raise RuleParamError("Tolerances must be 0 or more.")
    price_field = spec.params.get("price_field", "price")
    quantity_field = spec.params.get("quantity_field", "quantity")
    for name in (price_field, quantity_field):
        _validate_field(str(name))
    get_total, get_price, get_qty = (
        _getter(spec.field),
        _getter(price_field),
        _getter(quantity_field),
    )
    message = f"must equal {price_field} × {quantity_field} (within {tolerance})"

    def check(row: dict[str, Any], received_at: dt.datetime) -> str | None:
        total, price, quantity = get_total(row), get_price(row), get_qty(row)
        if total is None or price is None or quantity is None:
            return None  # presence is the `required` kind's business
        total, price, quantity = _number(total), _number(price), _number(quantity)
        if total is None or price is None or quantity is None:
            return message
        expected = price * quantity
        allowed_gap = max(tolerance, abs(expected) * relative)
        return message if abs(total - expected) > allowed_gap else None

    return check


def _compile_required_if(spec: RuleSpec) -> RowCheck:
    _unknown_params(spec.params, {"when_field", "values"})
    when_field = spec.params.get("when_field")
    values = spec.params.get("values")
    if not isinstance(when_field, str):
        raise RuleParamError("Parameter 'when_field' must name a field.")
    _validate_field(when_field)
    if not isinstance(values, list) or not values:
        raise RuleParamError("Parameter 'values' must be a non-empty list.")
    trigger = frozenset(str(v) for v in values)
    get, get_when = _getter(spec.field), _getter(when_field)
    message = f"is required when {when_field} is {', '.join(sorted(trigger))}"

    def check(row: dict[str, Any], received_at: dt.datetime) -> str | None:
        when = get_when(row)
        if when is None or str(when) not in trigger:
            return None
        return message if _is_empty(get(row)) else None

    return check


def _compile_session_exists(spec: RuleSpec) -> None:
    _unknown_params(spec.params, {"lookback_days"})
    if spec.field != "session_id":
        raise RuleParamError("session_exists applies to the field session_id.", "field")
    days = _param_number(spec.params, "lookback_days")
    if days is not None and days <= 0:
        raise RuleParamError("'lookback_days' must be greater than 0.")


def _compile_unique_per_day(spec: RuleSpec) -> None:
    _unknown_params(spec.params, set())
    if spec.field not in STRING_FIELDS or spec.field == "event_type":
        raise RuleParamError("unique_per_day needs a text field such as order_id.", "field")


_COMPILERS: dict[str, Callable[[RuleSpec], Any]] = {
    "required": _compile_required,
    "regex": _compile_regex,
    "range": _compile_range,
    "allowed_values": _compile_allowed_values,
    "max_length": _compile_max_length,
    "max_age": _compile_max_age,
    "future_skew": _compile_future_skew,
    "revenue_matches": _compile_revenue_matches,
    "required_if": _compile_required_if,
    "session_exists": _compile_session_exists,
    "unique_per_day": _compile_unique_per_day,
}


def rule_compile(spec: RuleSpec) -> CompiledRule:
    """Validate a rule's definition and precompute its check. Raises RuleParamError."""
    if spec.kind not in _COMPILERS:
        raise RuleParamError(f"Unknown kind {spec.kind!r}.", "kind")
    if spec.severity not in ("error", "warning"):
        raise RuleParamError("Severity must be error or warning.", "severity")
    if not isinstance(spec.params, Mapping):
        raise RuleParamError("Parameters must be a JSON object.")
    unknown_types = set(spec.event_types) - set(EVENT_TYPES)
    if unknown_types:
        raise RuleParamError(f"Unknown event types: {sorted(unknown_types)}.", "event_types")
    _validate_field(spec.field)
    check = _COMPILERS[spec.kind](spec)
    types = frozenset(spec.event_types) or frozenset(EVENT_TYPES)
    return CompiledRule(spec=spec, check=check, types=types)


def ruleset_compile(specs: Iterable[RuleSpec], version: object = None) -> CompiledRuleSet:
    """Compile enabled rules into a set grouped by event type. A broken rule is skipped.

    Rules are validated when saved, so a broken one here means the database was edited by
    hand; skipping it keeps ingestion running.
    """
    compiled = []
    for spec in specs:
        try:
            compiled.append(rule_compile(spec))
        except RuleParamError:
            continue
    by_type: dict[str, list[CompiledRule]] = defaultdict(list)
    for rule in compiled:
        if rule.check is None:
            continue
        for event_type in rule.types:
            by_type[event_type].append(rule)
    return CompiledRuleSet(
        version=version,
        rules=tuple(compiled),
        row_rules_by_type={key: tuple(value) for key, value in by_type.items()},
        batch_rules=tuple(rule for rule in compiled if rule.check is None),
    )


# --- evaluation ---------------------------------------------------------------------------

Failure = tuple[CompiledRule, str]


@dataclass(slots=True)
class BatchEvaluation:
    """Failures per row (same order as the input), and how many rows each rule checked."""

    failures: list[list[Failure]]
    evaluated: dict[int, int] = field(default_factory=dict)


def ruleset_evaluate(
    ruleset: CompiledRuleSet,
    rows: Sequence[dict[str, Any] | None],
    *,
    received_at: dt.datetime,
    facts: StoredFacts,
) -> BatchEvaluation:
    """Evaluate every rule on every row that passed the schema layer (None rows are skipped)."""
    failures: list[list[Failure]] = [[] for _ in rows]
    evaluated: dict[int, int] = defaultdict(int)
    by_type = ruleset.row_rules_by_type
    type_counts: dict[str, int] = defaultdict(int)
    for index, row in enumerate(rows):
        if row is None:
            continue
        event_type = row["event_type"]
        type_counts[event_type] += 1
        for rule in by_type.get(event_type, ()):
            message = rule.check(row, received_at)
            if message is not None:
                failures[index].append((rule, message))
    for rule in ruleset.rules:
        evaluated[rule.id] = sum(type_counts.get(event_type, 0) for event_type in rule.types)
    for rule in ruleset.batch_rules:
        if rule.spec.kind == "session_exists":
            _session_exists(rule, rows, failures, received_at, facts)
        elif rule.spec.kind == "unique_per_day":
            _unique_per_day(rule, rows, failures, facts)
    return BatchEvaluation(failures=failures, evaluated=dict(evaluated))


def _session_exists(
    rule: CompiledRule,
    rows: Sequence[dict[str, Any] | None],
    failures: list[list[Failure]],
    received_at: dt.datetime,
    facts: StoredFacts,
) -> None:
    """A session exists when a stored event has it, or another row of the batch with it is
    no later than this one (clients may batch out of order)."""
    targets = [
        (index, row)
        for index, row in enumerate(rows)
        if row is not None and row["event_type"] in rule.types
    ]
    if not targets:
        return
    earliest_in_batch: dict[str, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for index, row in enumerate(rows):
        if row is not None:
            earliest_in_batch[row["session_id"]].append((row["timestamp"], index))
    days = rule.spec.params.get("lookback_days") or 7
    since = received_at - dt.timedelta(days=float(days))
    stored = facts.sessions_existing({row["session_id"] for _, row in targets}, since)
    for index, row in targets:
        session = row["session_id"]
        if session in stored:
            continue
        seen = any(
            other_index != index and timestamp <= row["timestamp"]
            for timestamp, other_index in earliest_in_batch[session]
        )
        if not seen:
            failures[index].append((rule, "needs a session with earlier events; none was seen"))


def _unique_per_day(
    rule: CompiledRule,
    rows: Sequence[dict[str, Any] | None],
    failures: list[list[Failure]],
    facts: StoredFacts,
) -> None:
    """A value may appear on one event per UTC day; re-sending the same event_id is not a
    second use (that is a duplicate, handled by event_id dedupe)."""
    name = rule.spec.field
    targets = []
    for index, row in enumerate(rows):
        if row is None or row["event_type"] not in rule.types:
            continue
        value = row.get(name)
        if value:
            day = row["timestamp"].astimezone(dt.UTC).date()
            targets.append((index, value, day, str(row["event_id"])))
    if not targets:
        return
    first_day = min(day for _, _, day, _ in targets)
    last_day = max(day for _, _, day, _ in targets)
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(last_day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=1)
    stored = facts.values_on_days(
        name,
        {value for _, value, _, _ in targets},
        frozenset(rule.spec.event_types),
        start,
        end,
    )
    owners: dict[tuple[str, dt.date], set[str]] = defaultdict(set)
    for value, day, event_id in stored:
        owners[(value, day)].add(event_id)
    message = f"{name} was already used on another event that day"
    for index, value, day, event_id in targets:
        used_by = owners[(value, day)]
        if used_by - {event_id}:
            failures[index].append((rule, message))
        used_by.add(event_id)
