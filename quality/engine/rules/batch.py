"""Evaluating a compiled rule set on a batch: the generated evaluator for row rules, then
the batch rules, which look at stored events through a `StoredFacts` provider (one lookup per
rule per batch, never one per event).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from quality.engine.rules.specs import CompiledRule, CompiledRuleSet, type_key


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
    evaluated = ruleset_evaluated_counts(ruleset, rows)
    for rule in ruleset.batch_rules:
        if rule.spec.kind == "session_exists":
            _session_exists(rule, rows, failing, received_at, facts)
        elif rule.spec.kind == "unique_per_day":
            _unique_per_day(rule, rows, failing, facts)
    failures = [failing.get(index, NO_FAILURES) for index in range(len(rows))]
    return BatchEvaluation(failures=failures, evaluated=evaluated)


def ruleset_evaluated_counts(
    ruleset: CompiledRuleSet, rows: Sequence[dict[str, Any] | None]
) -> dict[int, int]:
    """How many rows each rule checked. Counted per event type present rather than per rule
    and type: for a single event, a dozen rules times seven types of look-ups cost more than
    evaluating the rules."""
    if len(rows) == 1:
        type_counts = {type_key(rows[0]["event_type"]): 1} if rows[0] is not None else {}
    else:
        type_counts = Counter(type_key(row["event_type"]) for row in rows if row is not None)
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
        # An empty session_id is derived at store time: nothing to check it against yet.
        if row is not None and row["session_id"] and type_key(row["event_type"]) in rule.types
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
        if row is None or type_key(row["event_type"]) not in rule.types:
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
