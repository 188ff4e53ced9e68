"""One compiler per rule kind: validate a rule's parameters, return its inlined source.

A row rule compiles to a `RowCode` (Python source lines and bound constants) that the rule
set's generated evaluator (`quality.engine.rules.evaluator`) inlines; a batch rule (it needs
stored events) compiles to None and is evaluated per batch (`quality.engine.rules.batch`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from events.schema import EVENT_TYPES
from quality.engine.rules.specs import (
    ALL_TYPE_KEYS,
    ROW_FIELDS,
    STRING_FIELDS,
    TIME_FIELDS,
    CompiledRule,
    RowCode,
    RuleParamError,
    RuleSpec,
)

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


def as_number(value: Any) -> Decimal | None:
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
    number = as_number(params[key])
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


def revenue_gap(
    total: Any, price: Any, quantity: Any, tolerance: Decimal, relative: Decimal
) -> bool | None:
    """True when total differs from price * quantity by more than allowed; None if not numbers."""
    total, price, quantity = as_number(total), as_number(price), as_number(quantity)
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
    types = frozenset(spec.event_types) or ALL_TYPE_KEYS
    return CompiledRule(spec=spec, code=code, types=types)
