"""The generated evaluator: one Python function per rule set that runs every row rule on
every row of a batch, with each rule's source inlined, and the compilation of a rule set.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from quality.engine.rules.compilers import as_number, revenue_gap, rule_compile
from quality.engine.rules.specs import (
    CUSTOM_EVENTS,
    ROW_FIELDS,
    CompiledRule,
    CompiledRuleSet,
    Evaluator,
    RuleParamError,
    RuleSpec,
    evaluate_nothing,
)


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
        "NUMBER": as_number,
        "REVENUE_GAP": revenue_gap,
        "KNOWN_TYPES": frozenset(by_type) - {CUSTOM_EVENTS},
        "CUSTOM": CUSTOM_EVENTS,
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
    if CUSTOM_EVENTS in by_type:  # every name without rules of its own is a custom event
        source.append("        if t not in KNOWN_TYPES: t = CUSTOM")
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
        return evaluate_nothing
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
