"""Row-level quality rules: parameter validation, compilation, and batch evaluation.

Pure Python, no ORM. A `RuleSpec` (mapped once from a database row) is compiled into inlined
source with everything precomputed (regex objects, frozensets, Decimal bounds); a rule set
joins the row rules of every event type into one generated function, so evaluating an event
is a dict lookup and a few inlined tests. Rules that need stored data (a session that exists,
a value unique per day) are evaluated per batch through a `StoredFacts` provider: one lookup
per batch, never one per event.

- `specs`: what a rule may check, `RuleSpec`, and the compiled forms;
- `compilers`: one compiler per kind (`rule_compile`);
- `evaluator`: the generated evaluator of a rule set (`ruleset_compile`);
- `batch`: evaluating a batch, batch rules and their stored-event facts (`ruleset_evaluate`).
"""

from events.schema import EVENT_TYPES
from quality.engine.rules.batch import (
    NO_FAILURES,
    BatchEvaluation,
    Failure,
    MemoryFacts,
    NoStoredFacts,
    StoredFacts,
    ruleset_evaluate,
    ruleset_evaluated_counts,
)
from quality.engine.rules.compilers import rule_compile
from quality.engine.rules.evaluator import ruleset_compile
from quality.engine.rules.specs import (
    BATCH_KINDS,
    CUSTOM_EVENTS,
    EMPTY_RULESET,
    KIND_HELP,
    NUMBER_FIELDS,
    ROW_FIELDS,
    ROW_KINDS,
    RULE_KINDS,
    STRING_FIELDS,
    TIME_FIELDS,
    CompiledRule,
    CompiledRuleSet,
    Evaluator,
    RowCode,
    RuleParamError,
    RuleSpec,
    type_key,
)

__all__ = [
    "BATCH_KINDS",
    "CUSTOM_EVENTS",
    "EMPTY_RULESET",
    "EVENT_TYPES",
    "KIND_HELP",
    "NO_FAILURES",
    "NUMBER_FIELDS",
    "ROW_FIELDS",
    "ROW_KINDS",
    "RULE_KINDS",
    "STRING_FIELDS",
    "TIME_FIELDS",
    "BatchEvaluation",
    "CompiledRule",
    "CompiledRuleSet",
    "Evaluator",
    "Failure",
    "MemoryFacts",
    "NoStoredFacts",
    "RowCode",
    "RuleParamError",
    "RuleSpec",
    "StoredFacts",
    "rule_compile",
    "ruleset_compile",
    "ruleset_evaluate",
    "ruleset_evaluated_counts",
    "type_key",
]
