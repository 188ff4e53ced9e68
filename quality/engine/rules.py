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
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from events.schema import EVENT_TYPES

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


def _evaluate_nothing(rows: Sequence[Any], failures: list, received_at: dt.datetime) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CompiledRuleSet:
    version: object
    rules: tuple[CompiledRule, ...]
    row_rules_by_type: Mapping[str, tuple[CompiledRule, ...]]
    batch_rules: tuple[CompiledRule, ...]
    evaluate_rows: Evaluator = _evaluate_nothing
    # event type -> ids of every rule (row or batch) that checks events of that type; None
    # when two rules share an id (unsaved specs), which counting by id cannot tell apart
    rule_ids_by_type: Mapping[str, tuple[int, ...]] | None = None
    rule_ids: tuple[int, ...] = ()

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


def _value_lines(field_name: str, target: str = "v", const: str = "F@") -> tuple[str, dict]:
    """Source that loads a field (or custom property) of `row` into `target`."""
    if field_name.startswith("properties."):
        key = field_name.removeprefix("properties.")
        return f"{target} = (row.get('properties') or EMPTY).get({const})", {const: key}
    return f"{target} = row.get({const})", {const: field_name}


def _validate_field(field_name: str, allowed: frozenset[str] | None = None) -> None:
    is_property = field_name.startswith("properties.") and len(field_name) > len("properties.")
    if is_property and (allowed is None or "properties.*" in allowed):
        return
    if field_name in (allowed if allowed is not None else ROW_FIELDS):
        return
    choices = ", ".join(sorted(allowed if allowed is not None else ROW_FIELDS))
    raise RuleParamError(f"Unknown field {field_name!r}; use one of: {choices}.", "field")


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


# "Empty" for required-like kinds: None, "", whitespace only, or an empty object.
_EMPTY_TEST = "v is None or v == '' or v == EMPTY or (v.__class__ is str and v.isspace())"
_REGEX_CACHE_MAX = 4096  # per rule: repeated values (product ids, paths) skip the regex


# --- one compiler per kind: validate parameters, return the rule's inlined source ---------


def _compile_required(spec: RuleSpec) -> RowCode:
    _unknown_params(spec.params, set())
    load, consts = _value_lines(spec.field)
    return RowCode(
        (load, f"if {_EMPTY_TEST}: FAIL(MSG@)"),
        {**consts, "MSG@": "is required and may not be empty"},
    )


def _compile_regex(spec: RuleSpec) -> RowCode:
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
    load, consts = _value_lines(spec.field)
    lines = (
        load,
        "if v is not None and v != '':",  # absence is the `required` kind's business
        "    s = v if v.__class__ is str else str(v)",
        "    ok = SEEN@.get(s)",
        "    if ok is None:",
        "        ok = MATCH@(s) is not None",
        f"        if len(SEEN@) >= {_REGEX_CACHE_MAX}: SEEN@.clear()",
        "        SEEN@[s] = ok",
        "    if not ok: FAIL(MSG@)",
    )
    return RowCode(
        lines,
        {
            **consts,
            "MATCH@": match,
            "SEEN@": {},
            "MSG@": f"does not match the pattern {pattern}",
        },
    )


def _compile_range(spec: RuleSpec) -> RowCode:
    _unknown_params(spec.params, {"min", "max"})
    low = _param_number(spec.params, "min")
    high = _param_number(spec.params, "max")
    if low is None and high is None:
        raise RuleParamError("Give 'min', 'max' or both.")
    if low is not None and high is not None and low > high:
        raise RuleParamError(f"'min' ({low}) must not be greater than 'max' ({high}).")
    if low is not None and high is not None:
        message = f"must be between {low} and {high}"
    elif low is not None:
        message = f"must be at least {low}"
    else:
        message = f"must be at most {high}"
    outside = " or ".join(
        test for test, bound in (("v < LOW@", low), ("v > HIGH@", high)) if bound is not None
    )
    load, consts = _value_lines(spec.field)
    lines = (
        load,
        "if v is not None and v != '':",
        "    if v.__class__ is not int and v.__class__ is not Decimal: v = NUMBER(v)",
        "    if v is None: FAIL('must be a number')",
        f"    elif {outside}: FAIL(MSG@)",
    )
    return RowCode(lines, {**consts, "LOW@": low, "HIGH@": high, "MSG@": message})


def _compile_allowed_values(spec: RuleSpec) -> RowCode:
    _unknown_params(spec.params, {"values"})
    values = spec.params.get("values")
    if not isinstance(values, list) or not values:
        raise RuleParamError("Parameter 'values' must be a non-empty list.")
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        raise RuleParamError("'values' may hold only strings and numbers.")
    allowed = frozenset(values) | frozenset(str(v) for v in values)
    shown = ", ".join(str(v) for v in values[:10]) + (" …" if len(values) > 10 else "")
    load, consts = _value_lines(spec.field)
    lines = (
        load,
        "if v is not None and v != '':",
        "    try: bad = v not in ALLOWED@",
        "    except TypeError: bad = True",  # unhashable: a list or object in properties
        "    if bad: FAIL(MSG@)",
    )
    return RowCode(lines, {**consts, "ALLOWED@": allowed, "MSG@": f"must be one of: {shown}"})


def _compile_max_length(spec: RuleSpec) -> RowCode:
    _unknown_params(spec.params, {"max"})
    limit = spec.params.get("max")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise RuleParamError("Parameter 'max' must be a whole number >= 0.")
    load, consts = _value_lines(spec.field)
    lines = (
        load,
        "if v is not None and len(v if v.__class__ is str else str(v)) > LIMIT@: FAIL(MSG@)",
    )
    return RowCode(
        lines, {**consts, "LIMIT@": limit, "MSG@": f"must be at most {limit} characters"}
    )


def _time_field(spec: RuleSpec) -> None:
    if spec.field not in TIME_FIELDS:
        raise RuleParamError(
            f"This kind needs a time field: {', '.join(sorted(TIME_FIELDS))}.", "field"
        )


def _compile_max_age(spec: RuleSpec) -> RowCode:
    _unknown_params(spec.params, {"days"})
    _time_field(spec)
    days = _param_number(spec.params, "days", required=True)
    if days <= 0:
        raise RuleParamError("'days' must be greater than 0.")
    load, consts = _value_lines(spec.field)
    return RowCode(
        (load, "if v is not None and v < OLDEST@: FAIL(MSG@)"),
        {
            **consts,
            "AGE@": dt.timedelta(days=float(days)),
            "MSG@": f"is more than {days} days before the time it was received",
        },
        setup=("OLDEST@ = received_at - AGE@",),
    )


def _compile_future_skew(spec: RuleSpec) -> RowCode:
    _unknown_params(spec.params, {"seconds"})
    _time_field(spec)
    seconds = _param_number(spec.params, "seconds", required=True)
    if seconds < 0:
        raise RuleParamError("'seconds' must be 0 or more.")
    load, consts = _value_lines(spec.field)
    return RowCode(
        (load, "if v is not None and v > LATEST@: FAIL(MSG@)"),
        {
            **consts,
            "SKEW@": dt.timedelta(seconds=float(seconds)),
            "MSG@": f"is more than {seconds} s in the future",
        },
        setup=("LATEST@ = received_at + SKEW@",),
    )


def _compile_revenue_matches(spec: RuleSpec) -> RowCode:
    allowed = {"tolerance", "relative_tolerance", "price_field", "quantity_field"}
    _unknown_params(spec.params, allowed)
    tolerance = _param_number(spec.params, "tolerance") or Decimal("0.01")
    relative = _param_number(spec.params, "relative_tolerance") or Decimal(0)
    if tolerance < 0 or relative < 0:
        raise RuleParamError("Tolerances must be 0 or more.")
    price_field = str(spec.params.get("price_field", "price"))
    quantity_field = str(spec.params.get("quantity_field", "quantity"))
    for name in (price_field, quantity_field):
        _validate_field(name)
    message = f"must equal {price_field} × {quantity_field} (within {tolerance})"
    lines, consts = [], {}
    for target, name, const in (
        ("total", spec.field, "F@"),
        ("price", price_field, "P@"),
        ("qty", quantity_field, "Q@"),
    ):
        line, extra = _value_lines(name, target, const)
        lines.append(line)
        consts.update(extra)
    lines += [
        # Presence is the `required` kind's business; all three must be there to compare.
        "if total is not None and price is not None and qty is not None:",
        "    gap = REVENUE_GAP(total, price, qty, TOL@, REL@)",
        "    if gap is None or gap: FAIL(MSG@)",
    ]
    return RowCode(tuple(lines), {**consts, "TOL@": tolerance, "REL@": relative, "MSG@": message})


def _revenue_gap(
    total: Any, price: Any, quantity: Any, tolerance: Decimal, relative: Decimal
) -> bool | None:
    """True when total differs from price * quantity by more than allowed; None if not numbers."""
    total, price, quantity = _number(total), _number(price), _number(quantity)
    if total is None or price is None or quantity is None:
        return None
    expected = price * quantity
    return abs(total - expected) > max(tolerance, abs(expected) * relative)


def _compile_required_if(spec: RuleSpec) -> RowCode:
    _unknown_params(spec.params, {"when_field", "values"})
    when_field = spec.params.get("when_field")
    values = spec.params.get("values")
    if not isinstance(when_field, str):
        raise RuleParamError("Parameter 'when_field' must name a field.")
    _validate_field(when_field)
    if not isinstance(values, list) or not values:
        raise RuleParamError("Parameter 'values' must be a non-empty list.")
    trigger = frozenset(str(v) for v in values)
    load_when, when_consts = _value_lines(when_field, "w", "W@")
    load, consts = _value_lines(spec.field)
    lines = (
        load_when,
        "if w is not None and (w if w.__class__ is str else str(w)) in TRIGGER@:",
        f"    {load}",
        f"    if {_EMPTY_TEST}: FAIL(MSG@)",
    )
    message = f"is required when {when_field} is {', '.join(sorted(trigger))}"
    return RowCode(lines, {**when_consts, **consts, "TRIGGER@": trigger, "MSG@": message})


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


_COMPILERS: dict[str, Callable[[RuleSpec], RowCode | None]] = {
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
    """Validate a rule's definition and produce its code. Raises RuleParamError."""
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
    code = _COMPILERS[spec.kind](spec)
    types = frozenset(spec.event_types) or frozenset(EVENT_TYPES)
    return CompiledRule(spec=spec, code=code, types=types)


def _evaluator_build(
    rules: Sequence[CompiledRule], by_type: Mapping[str, Sequence[CompiledRule]]
) -> Evaluator:
    """Generate one function that runs every row rule on every row of a batch.

    Per event it costs a dict lookup on event_type and the inlined tests of that type's
    rules: no call per rule. All values reach the code as bound constants, never as text.
    """
    namespace: dict[str, Any] = {
        "EMPTY": {},
        "Decimal": Decimal,
        "NUMBER": _number,
        "REVENUE_GAP": _revenue_gap,
    }
    suffix = {id(rule): f"_{index}" for index, rule in enumerate(rules)}

    def bind(text: str, rule: CompiledRule) -> str:
        marker = suffix[id(rule)]
        text = text.replace("@", marker)
        return text.replace("FAIL(", f"failures[i].append((RULE{marker}, ")

    source = ["def evaluate(rows, failures, received_at):"]
    for rule in rules:
        marker = suffix[id(rule)]
        namespace[f"RULE{marker}"] = rule
        for key, value in rule.code.consts.items():
            namespace[key.replace("@", marker)] = value
        source += [f"    {bind(line, rule)}" for line in rule.code.setup]
    source += [
        "    for i, row in enumerate(rows):",
        "        if row is None: continue",
        "        t = row['event_type']",
    ]
    for position, (event_type, type_rules) in enumerate(sorted(by_type.items())):
        namespace[f"TYPE_{position}"] = event_type
        source.append(f"        {'if' if position == 0 else 'elif'} t == TYPE_{position}:")
        block: list[str] = []
        loaded: list[str] = []  # each plain field is read from the row once per event
        for rule in type_rules:
            for line in rule.code.lines:
                line = _shared_load(line, rule.code.consts, loaded)
                bound = bind(line, rule)
                if "failures[i].append" in bound:
                    bound += ")"  # close the tuple opened by FAIL(
                block.append(f"            {bound}")
        source += [f"            f_{name} = row.get({name!r})" for name in loaded] + block
    if len(source) == 1:
        return _evaluate_nothing
    code = compile("\n".join(source), "<quality rules>", "exec")
    exec(code, namespace)  # noqa: S102 - our own templates; rule values are bound constants
    return namespace["evaluate"]


_LOAD = re.compile(r"^(\s*)(\w+) = row\.get\((\w+@)\)$")


def _shared_load(line: str, consts: Mapping[str, Any], loaded: list[str]) -> str:
    """Turn `v = row.get(F@)` for a plain field into `v = f_<field>`, read once per event.
    Plain field names are identifiers from ROW_FIELDS, so they are safe in source text."""
    match = _LOAD.match(line)
    if match is None or consts.get(match.group(3)) not in ROW_FIELDS:
        return line
    name = consts[match.group(3)]
    if name not in loaded:
        loaded.append(name)
    return f"{match.group(1)}{match.group(2)} = f_{name}"


def ruleset_compile(specs: Iterable[RuleSpec], version: object = None) -> CompiledRuleSet:
    """Compile enabled rules into one generated evaluator. A broken rule is skipped.

    Rules are validated when saved, so a broken one here means the database was edited by
    hand; skipping it keeps ingestion running.
    """
    compiled = []
    for spec in specs:
        try:
            compiled.append(rule_compile(spec))
        except RuleParamError:
            continue
    row_rules = [rule for rule in compiled if rule.code is not None]
    by_type: dict[str, list[CompiledRule]] = defaultdict(list)
    for rule in row_rules:
        for event_type in sorted(rule.types):
            by_type[event_type].append(rule)
    ids_by_type: dict[str, list[int]] = defaultdict(list)
    for rule in compiled:
        for event_type in sorted(rule.types):
            ids_by_type[event_type].append(rule.id)
    return CompiledRuleSet(
        version=version,
        rules=tuple(compiled),
        row_rules_by_type={key: tuple(value) for key, value in by_type.items()},
        batch_rules=tuple(rule for rule in compiled if rule.code is None),
        evaluate_rows=_evaluator_build(row_rules, by_type),
        rule_ids_by_type=(
            {key: tuple(value) for key, value in ids_by_type.items()}
            if len({rule.id for rule in compiled}) == len(compiled)
            else None
        ),
        rule_ids=tuple(rule.id for rule in compiled),
    )


# --- evaluation ---------------------------------------------------------------------------

Failure = tuple[CompiledRule, str]
NO_FAILURES: list[Failure] = []  # shared, never appended to


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
    facts: StoredFacts | None,
) -> BatchEvaluation:
    """Evaluate every rule on every row that passed the schema layer (None rows are skipped)."""
    # Lists only for rows that fail: most rows pass, and allocation is what the hot path pays.
    failing: defaultdict[int, list[Failure]] = defaultdict(list)
    ruleset.evaluate_rows(rows, failing, received_at)
    evaluated = _evaluated_counts(ruleset, rows)
    for rule in ruleset.batch_rules:
        if rule.spec.kind == "session_exists":
            _session_exists(rule, rows, failing, received_at, facts)
        elif rule.spec.kind == "unique_per_day":
            _unique_per_day(rule, rows, failing, facts)
    failures = [failing.get(index, NO_FAILURES) for index in range(len(rows))]
    return BatchEvaluation(failures=failures, evaluated=evaluated)


def _evaluated_counts(
    ruleset: CompiledRuleSet, rows: Sequence[dict[str, Any] | None]
) -> dict[int, int]:
    """How many rows each rule checked. Counted per event type present rather than per rule
    and type: for a single event, a dozen rules times seven types of look-ups cost more than
    evaluating the rules."""
    if len(rows) == 1:
        type_counts = {rows[0]["event_type"]: 1} if rows[0] is not None else {}
    else:
        type_counts = Counter(row["event_type"] for row in rows if row is not None)
    ids_by_type = ruleset.rule_ids_by_type
    if ids_by_type is None:
        return {
            rule.id: sum(type_counts.get(event_type, 0) for event_type in rule.types)
            for rule in ruleset.rules
        }
    evaluated = dict.fromkeys(ruleset.rule_ids, 0)
    for event_type, count in type_counts.items():
        for rule_id in ids_by_type.get(event_type, ()):
            evaluated[rule_id] += count
    return evaluated


def _session_exists(
    rule: CompiledRule,
    rows: Sequence[dict[str, Any] | None],
    failures: defaultdict[int, list[Failure]],
    received_at: dt.datetime,
    facts: StoredFacts,
) -> None:
    """A session exists when a stored event has it, or another row of the batch with it is
    earlier by event time (clients may batch out of order)."""
    targets = [
        (index, row)
        for index, row in enumerate(rows)
        if row is not None and row["event_type"] in rule.types
    ]
    if not targets:
        return
    wanted = {row["session_id"] for _, row in targets}
    in_batch: dict[str, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for index, row in enumerate(rows):
        if row is not None and row["session_id"] in wanted:
            in_batch[row["session_id"]].append((row["timestamp"], index))
    # Earlier by event time; at the same instant the earlier position wins, so two events of
    # an unknown session cannot vouch for each other.
    unseen = [
        (index, row)
        for index, row in targets
        if not any(other < (row["timestamp"], index) for other in in_batch[row["session_id"]])
    ]
    if not unseen:
        return  # every session showed up earlier in the batch: no query needed
    days = rule.spec.params.get("lookback_days") or 7
    since = received_at - dt.timedelta(days=float(days))
    stored = facts.sessions_existing({row["session_id"] for _, row in unseen}, since)
    for index, row in unseen:
        if row["session_id"] not in stored:
            failures[index].append((rule, "needs a session with earlier events; none was seen"))


def _unique_per_day(
    rule: CompiledRule,
    rows: Sequence[dict[str, Any] | None],
    failures: defaultdict[int, list[Failure]],
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
