"""Writes for rules: version bumps that reach every process, per-rule counters, trying a rule.

Counters are summed in the process and upserted at most every couple of seconds (one
statement, rows in a fixed order so concurrent writers cannot deadlock), never inside the
ingestion transaction: a counter problem must not lose events.
"""

from __future__ import annotations

import atexit
import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from quality import rulesets, selectors
from quality.engine.rules import (
    RuleParamError,
    rule_compile,
    ruleset_compile,
    ruleset_evaluate,
    type_key,
)
from quality.models import QualityRule, RuleCounter, RuleSetVersion

logger = structlog.get_logger(__name__)


def rule_set_bump() -> int:
    """Signal every process that rules changed: bump the version row, drop the local cache."""
    with transaction.atomic():
        updated = RuleSetVersion.objects.filter(pk=1).update(version=F("version") + 1)
        if not updated:
            RuleSetVersion.objects.get_or_create(pk=1, defaults={"version": 1})
    transaction.on_commit(rulesets.ruleset_invalidate)
    rulesets.ruleset_invalidate()
    return RuleSetVersion.objects.get(pk=1).version


def rule_save(rule: QualityRule, *, user: Any = None) -> QualityRule:
    """Validate and save a rule (as in admin), record who changed it, and bump the version."""
    rule.full_clean()
    if user is not None and getattr(user, "is_authenticated", False):
        rule.updated_by = user
        rule._history_user = user  # the audit trail's "who"
    rule.save()
    rule_set_bump()
    logger.info("quality.rule_saved", rule_id=rule.pk, rule=rule.name, enabled=rule.enabled)
    return rule


def rules_set_enabled(rule_ids: Sequence[int], enabled: bool, *, user: Any = None) -> int:
    """Enable or disable rules, one save each so that the audit trail records every change
    (rules are few; this is an admin action, not a hot path)."""
    signed_in = user is not None and getattr(user, "is_authenticated", False)
    count = 0
    with transaction.atomic():
        for rule in QualityRule.objects.select_for_update().filter(pk__in=rule_ids):
            rule.enabled = enabled
            fields = ["enabled", "updated_at"]
            if signed_in:
                rule.updated_by = user
                rule._history_user = user
                fields.append("updated_by")
            rule.save(update_fields=fields)
            count += 1
    rule_set_bump()
    return count


def rules_delete(rule_ids: Sequence[int]) -> int:
    count, _ = QualityRule.objects.filter(pk__in=rule_ids).delete()
    rule_set_bump()
    return count


# --- counters -------------------------------------------------------------------------------


def _schema_key(error: Any) -> tuple[str, str]:
    head = error.field.split(".", 1)[0][:60]
    return f"schema:{head}:{error.rule}"[:160], f"{head}: {error.rule} (schema)"[:160]


class _CounterBuffer:
    """Counts summed in this process between flushes, so single-event requests do not each
    pay a database round trip. At most QUALITY_COUNTERS_FLUSH_SECONDS of counts live only in
    memory (lost if the process dies: acceptable for rates, never for events)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, dt.datetime], list] = {}
        self.flushed_at = time.monotonic()

    def add(self, rows: list[tuple]) -> None:
        with self.lock:
            for key, rule_id, name, severity, bucket, evaluated, rejected, warned in rows:
                entry = self.pending.get((key, bucket))
                if entry is None:
                    self.pending[(key, bucket)] = [
                        rule_id,
                        name,
                        severity,
                        evaluated,
                        rejected,
                        warned,
                    ]
                else:
                    entry[3] += evaluated
                    entry[4] += rejected
                    entry[5] += warned

    def take_if_due(self, interval: float) -> list[tuple]:
        with self.lock:
            if not self.pending or time.monotonic() - self.flushed_at < interval:
                return []
            pending, self.pending = self.pending, {}
            self.flushed_at = time.monotonic()
        return [(key, *entry[:3], bucket, *entry[3:]) for (key, bucket), entry in pending.items()]


_buffer = _CounterBuffer()


def validation_stats_record(results: Sequence[Any], *, received_at: dt.datetime) -> None:
    """Add one batch's outcomes to the per-rule, per-hour counters.

    `results` is what EventValidator.validate_batch returned (a ValidationBatch). Counts are
    buffered and written by one upsert at most every QUALITY_COUNTERS_FLUSH_SECONDS (0 in
    tests: every batch). Failures are logged, never raised: counters must not cost an event.
    """
    rows = _counter_rows(results, received_at)
    if rows:
        _buffer.add(rows)
    validation_stats_flush(force=False)


def validation_stats_flush(*, force: bool = True) -> int:
    """Write buffered counters now (force) or when the interval has passed. Returns rows."""
    interval = 0.0 if force else getattr(settings, "QUALITY_COUNTERS_FLUSH_SECONDS", 2.0)
    rows = sorted(_buffer.take_if_due(interval), key=lambda row: (row[0], row[4]))
    if not rows:
        return 0
    try:
        with transaction.atomic():
            _counters_upsert(rows)
    except DatabaseError as exc:
        logger.warning("quality.counters_failed", error=str(exc)[:200], rows=len(rows))
        return 0
    return len(rows)


def _flush_at_exit() -> None:
    try:
        validation_stats_flush()
    except Exception:  # interpreter shutdown: the database may be gone already
        logger.warning("quality.counters_lost_at_exit")


atexit.register(_flush_at_exit)


# The counter key and description of each rule of the last rule set seen (rule sets change
# only when rules do): formatting them for every rule on every single event cost more than
# evaluating the rules.
_rule_keys_cache: tuple[Any, dict[str, tuple[str, int, str, str]]] | None = None


def _rule_keys(ruleset: Any) -> dict[str, tuple[str, int, str, str]]:
    """counter key -> (counter key, rule id, name, severity), in key order (a later rule of
    the same id wins, as one counter row per key is written)."""
    global _rule_keys_cache
    cached = _rule_keys_cache
    if cached is not None and cached[0] is ruleset:
        return cached[1]
    by_key = {}
    for rule in ruleset.rules:
        key = f"rule:{rule.id}"
        by_key[key] = (key, rule.id, rule.spec.name, rule.spec.severity)
    keys = dict(sorted(by_key.items()))
    _rule_keys_cache = (ruleset, keys)
    return keys


def _counter_rows(results: Sequence[Any], received_at: dt.datetime) -> list[tuple]:
    ruleset = getattr(results, "ruleset", None)
    evaluated = getattr(results, "evaluated", None) or {}
    bucket = received_at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    rejected: dict[str, int] = defaultdict(int)
    warned: dict[str, int] = defaultdict(int)
    schema_names: dict[str, str] = {}
    for result in results:
        if not result.errors and not result.warnings:
            continue
        seen: set[str] = set()
        for error in result.errors:
            if error.rule_id is None:
                key, name = _schema_key(error)
                schema_names.setdefault(key, name)
            else:
                key = f"rule:{error.rule_id}"
            if key not in seen:
                seen.add(key)
                rejected[key] += 1
        for warning in result.warnings:
            key = f"rule:{warning.rule_id}"
            if warning.rule_id is not None and key not in seen:
                seen.add(key)
                warned[key] += 1
    rows = []
    if ruleset is not None:
        # A rule counts when it checked an event or (not in this rule set) failed one.
        for key, rule_id, name, severity in _rule_keys(ruleset).values():
            checked = evaluated.get(rule_id, 0)
            if checked or key in rejected or key in warned:
                rows.append(
                    (key, rule_id, name, severity, bucket, checked, rejected[key], warned[key])
                )
    # Schema failures checked every event of the batch.
    total = len(results)
    for key, name in schema_names.items():
        rows.append((key, None, name, "error", bucket, total, rejected[key], warned[key]))
    rows.sort(key=_row_key)
    return rows


def _row_key(row: tuple) -> str:
    return row[0]


def _counters_upsert(rows: list[tuple]) -> None:
    table = RuleCounter._meta.db_table
    placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    sql = (
        f"INSERT INTO {table} "  # noqa: S608 - table name from the model, values bound
        "(rule_key, rule_id, name, severity, bucket, evaluated, rejected, warned) "
        f"VALUES {placeholders} ON CONFLICT (rule_key, bucket) DO UPDATE SET "
        f"evaluated = {table}.evaluated + EXCLUDED.evaluated, "
        f"rejected = {table}.rejected + EXCLUDED.rejected, "
        f"warned = {table}.warned + EXCLUDED.warned, "
        "name = EXCLUDED.name, severity = EXCLUDED.severity"
    )
    params = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- trying a rule --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleTrial:
    checked: int
    applicable: int
    failed: int
    examples: list[dict[str, Any]]
    severity: str = "error"
    error: str = ""

    @property
    def summary(self) -> str:
        if self.error:
            return f"cannot try this rule: {self.error}"
        verb = "reject" if self.severity == "error" else "warn about"
        return (
            f"would {verb} {self.failed} of {self.checked} "
            f"(it applies to {self.applicable} of them)"
        )


class _StoredBefore:
    """Stored-event facts as they were just before a given event (a moving cutoff), from one
    query per trial: so trying a batch rule on stored events judges each one against what was
    there before it, including events older than the sample."""

    def __init__(self) -> None:
        self.by_session: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
        self.by_value: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
        self.cutoff: tuple[dt.datetime, str] | None = None

    def sessions_existing(self, session_ids: set[str], since: dt.datetime) -> set[str]:
        return {
            session
            for session in session_ids
            if any(since <= ts and (ts, eid) < self.cutoff for ts, eid in self.by_session[session])
        }

    def values_on_days(self, field, values, event_types, start, end):
        return {
            (value, ts.astimezone(dt.UTC).date(), eid)
            for value in values
            for ts, eid in self.by_value[value]
            if start <= ts < end and (ts, eid) < self.cutoff
        }


def _stored_before(compiled: Any, targets: list[dict[str, Any]]) -> _StoredBefore:
    facts = _StoredBefore()
    if not targets:
        return facts
    spec = compiled.spec
    oldest = min(row["timestamp"] for row in targets)
    if spec.kind == "session_exists":
        days = float(spec.params.get("lookback_days") or 7)
        since = oldest - dt.timedelta(days=days)
        sessions = {row["session_id"] for row in targets}
        for session, ts, eid in selectors.events_of_sessions(sessions, since):
            facts.by_session[session].append((ts, eid))
    else:
        values = {row[spec.field] for row in targets if row.get(spec.field)}
        start = dt.datetime.combine(oldest.astimezone(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
        for value, ts, eid in selectors.events_with_values(
            spec.field, values, spec.event_types, start
        ):
            facts.by_value[value].append((ts, eid))
    return facts


def rule_try(rule: QualityRule, *, sample_size: int = 1000) -> RuleTrial:
    """Evaluate one rule (enabled or not, saved or not) on the newest stored events, as if
    each had just arrived: row rules as of its receipt time, batch rules against the events
    stored before it."""
    try:
        compiled = rule_compile(rule.as_spec())
    except RuleParamError as exc:
        return RuleTrial(0, 0, 0, [], severity=rule.severity, error=str(exc))
    rows = selectors.events_sample(sample_size)
    for row in rows:
        row["event_id"] = str(row["event_id"])
    ruleset = ruleset_compile([compiled.spec])
    targets = [row for row in rows if type_key(row["event_type"]) in compiled.types]
    failed: list[tuple[dict[str, Any], str]] = []
    if compiled.code is None:
        facts = _stored_before(compiled, targets)
        for row in targets:
            facts.cutoff = (row["timestamp"], row["event_id"])
            evaluation = ruleset_evaluate(
                ruleset, [row], received_at=row["received_at"], facts=facts
            )
            failed += [(row, message) for _, message in evaluation.failures[0][:1]]
    else:
        by_receipt: dict[dt.datetime, list[dict[str, Any]]] = defaultdict(list)
        for row in targets:
            by_receipt[row["received_at"]].append(row)
        for received_at, group in by_receipt.items():
            evaluation = ruleset_evaluate(ruleset, group, received_at=received_at, facts=None)
            for row, failures in zip(group, evaluation.failures, strict=True):
                failed += [(row, message) for _, message in failures[:1]]
    examples = [_example(row, rule.field, message) for row, message in failed[:10]]
    return RuleTrial(len(rows), len(targets), len(failed), examples, severity=rule.severity)


def _example(row: dict[str, Any], field: str, message: str) -> dict[str, Any]:
    if field.startswith("properties."):
        value = (row.get("properties") or {}).get(field.removeprefix("properties."))
    else:
        value = row.get(field)
    return {
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "value": value,
        "message": message,
        "timestamp": row["timestamp"],
    }
