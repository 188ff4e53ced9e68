"""The compiled rule set of this process, reloaded within seconds of any rule change.

Each process keeps one compiled rule set and, at most every QUALITY_RULES_CACHE_SECONDS,
runs one tiny query for the rule-set version (a counter bumped by every rule change, plus
count and newest `updated_at` of the rules, which also catch edits made outside the services).
Only when that changed are the rules re-read and recompiled. So an admin edit reaches every
gunicorn and Celery process within about a second, with no restart and no pub/sub.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, connection

from quality.engine.rules import EMPTY_RULESET, CompiledRuleSet, RuleSpec, ruleset_compile
from quality.models import QualityRule, RuleSetVersion

logger = structlog.get_logger(__name__)

_lock = threading.Lock()
REFRESH_WAIT_SECONDS = 1.0
_cached: CompiledRuleSet = EMPTY_RULESET
_NEVER_LOADED: Any = object()
_cached_key: Any = _NEVER_LOADED
_checked_at = -math.inf


def _version_sql() -> str:
    version = RuleSetVersion._meta.db_table
    rules = QualityRule._meta.db_table
    return (
        f"SELECT (SELECT MAX(version) FROM {version}), "  # noqa: S608 - table names from models
        f"(SELECT COUNT(*) FROM {rules}), (SELECT MAX(updated_at) FROM {rules})"
    )


def ruleset_version_key() -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(_version_sql())
        return tuple(cursor.fetchone())


def rule_specs_enabled() -> list[RuleSpec]:
    rows = QualityRule.objects.filter(enabled=True).values_list(
        "id", "name", "kind", "field", "params", "severity", "event_types"
    )
    return [
        RuleSpec(
            id=pk,
            name=name,
            kind=kind,
            field=field,
            params=params or {},
            severity=severity,
            event_types=frozenset(event_types or ()),
        )
        for pk, name, kind, field, params, severity, event_types in rows
    ]


def ruleset_current() -> CompiledRuleSet:
    """The enabled rules, compiled; cheap to call per batch (usually no query at all)."""
    global _cached, _cached_key, _checked_at
    ttl = getattr(settings, "QUALITY_RULES_CACHE_SECONDS", 1.0)
    now = time.monotonic()
    if now - _checked_at < ttl:
        return _cached
    # One thread refreshes; the others wait for it (a rule change must reach the next batch),
    # but not for longer than REFRESH_WAIT_SECONDS: a refresh stuck on an unreachable database
    # would otherwise add its seconds to theirs (ADR 0008). Before the first load there is
    # nothing to fall back on, so they wait.
    waited = _lock.acquire(timeout=-1 if _cached_key is _NEVER_LOADED else REFRESH_WAIT_SECONDS)
    if not waited:
        return _cached
    try:
        if time.monotonic() - _checked_at < ttl:
            return _cached
        try:
            key = ruleset_version_key()
            if key != _cached_key:
                _cached = ruleset_compile(rule_specs_enabled(), version=key)
                _cached_key = key
                logger.info("quality.ruleset_loaded", version=str(key[0]), rules=len(_cached))
        except (DatabaseError, RuntimeError) as exc:
            # No database (pure unit use) or a blip: keep validating with what we have.
            logger.warning("quality.ruleset_unavailable", error=str(exc)[:200])
        _checked_at = time.monotonic()
        return _cached
    finally:
        _lock.release()


def ruleset_invalidate() -> None:
    """Make this process re-check the version on its next batch (other processes poll)."""
    global _checked_at
    _checked_at = -math.inf
