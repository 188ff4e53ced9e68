"""Rules and checks as a YAML file, so they can live in version control and be reviewed.

Export writes every rule and check sorted by name, keys in a fixed order, so a change shows as
a small diff. Import is a plan, then one transaction: the whole file is validated first (a bad
entry names its rule or check and field, and nothing is applied), then only the rows that differ
are saved, each with a history row whose change reason is "quality_config import", and the
rule-set version is bumped once when a rule changed (as admin edits do). Importing the same file
again changes nothing. Keys left out of an entry keep the current value (a new row gets the
model's default); rows missing from the file are kept unless `prune`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from quality.models import QualityCheck, QualityRule
from quality.services.rules import rule_set_bump

CHANGE_REASON = "quality_config import"
FORMAT_VERSION = 1
RULE_FIELDS = (
    "name",
    "description",
    "enabled",
    "event_types",
    "field",
    "kind",
    "params",
    "severity",
    "alert_rate_threshold",
    "alert_channels",
)
CHECK_FIELDS = (
    "name",
    "description",
    "enabled",
    "kind",
    "params",
    "threshold",
    "interval_minutes",
    "severity",
    "webhook_url",
    "alert_channels",
)
_SECTIONS = (
    ("rules", "rule", QualityRule, RULE_FIELDS),
    ("checks", "check", QualityCheck, CHECK_FIELDS),
)


class QualityConfigError(ValueError):
    """The file cannot be imported; the message names the entry and field."""


@dataclass(frozen=True, slots=True)
class ConfigChange:
    section: str  # "rule" or "check"
    name: str
    action: str  # "create", "update" or "delete"
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (old, new)

    def describe(self) -> str:
        head = {"create": "+", "update": "~", "delete": "-"}[self.action]
        lines = [f"{head} {self.section} {self.name} ({self.action})"]
        for name, (old, new) in self.fields.items():
            shown = _show(new) if self.action == "create" else f"{_show(old)} -> {_show(new)}"
            lines.append(f"    {name}: {shown}")
        return "\n".join(lines)


def _show(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000)
    return text.strip().removesuffix("...").strip()


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    if isinstance(value, str):
        return str(value)  # a TextChoices member is a str the YAML dumper does not know
    return value


def _entry(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _sorted(getattr(row, name)) for name in fields}


def quality_config_export() -> str:
    """Every rule and check as YAML: sorted by name, keys in a fixed order."""
    document = {"version": FORMAT_VERSION}
    for section, _label, model, fields in _SECTIONS:
        document[section] = [_entry(row, fields) for row in model.objects.order_by("name")]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def _parse(text: str) -> dict[str, list[dict[str, Any]]]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise QualityConfigError(f"not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise QualityConfigError("the file must be a mapping with 'rules' and 'checks' lists")
    unknown = sorted(set(document) - {"version", "rules", "checks"})
    if unknown:
        raise QualityConfigError(f"unknown top-level key(s): {', '.join(map(str, unknown))}")
    if document.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise QualityConfigError(f"version: only {FORMAT_VERSION} is understood")
    parsed = {}
    for section, label, _model, fields in _SECTIONS:
        entries = document.get(section) or []
        if not isinstance(entries, list):
            raise QualityConfigError(f"{section}: must be a list")
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            where = f"{label} #{index + 1}"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise QualityConfigError(f"{where}: field name: every entry needs a name")
            if entry["name"] in seen:
                raise QualityConfigError(f"{label} {entry['name']}: field name: listed twice")
            seen.add(entry["name"])
            extra = sorted(set(entry) - set(fields))
            if extra:
                raise QualityConfigError(
                    f"{label} {entry['name']}: field {extra[0]}: unknown; "
                    f"allowed: {', '.join(fields)}"
                )
        parsed[section] = entries
    return parsed


def _validate(row: Any, label: str) -> None:
    try:
        row.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        name, messages = next(iter(sorted(errors.items())))
        raise QualityConfigError(
            f"{label} {row.name}: field {name}: {' '.join(messages)}"
        ) from None


@dataclass(slots=True)
class _Plan:
    changes: list[ConfigChange]
    rows: list[Any]  # rows to save, validated
    deletions: list[Any]


def _plan(text: str, *, prune: bool) -> _Plan:
    parsed = _parse(text)
    plan = _Plan([], [], [])
    for section, label, model, fields in _SECTIONS:
        existing = {row.name: row for row in model.objects.all()}
        for entry in parsed[section]:
            row = existing.get(entry["name"]) or model()
            before = _entry(row, fields) if row.pk else {}
            for key, value in entry.items():
                setattr(row, key, value)
            _validate(row, label)
            after = _entry(row, fields)
            changed = {k: (before.get(k), after[k]) for k in fields if before.get(k) != after[k]}
            if not row.pk:
                plan.changes.append(ConfigChange(label, row.name, "create", changed))
                plan.rows.append(row)
            elif changed:
                plan.changes.append(ConfigChange(label, row.name, "update", changed))
                plan.rows.append(row)
        listed = {entry["name"] for entry in parsed[section]}
        for name in sorted(set(existing) - listed):
            if prune:
                plan.changes.append(ConfigChange(label, name, "delete"))
                plan.deletions.append(existing[name])
    return plan


def quality_config_diff(text: str, *, prune: bool = False) -> list[ConfigChange]:
    """What importing `text` would change (raises QualityConfigError when it cannot)."""
    return _plan(text, prune=prune).changes


@transaction.atomic
def quality_config_import(text: str, *, prune: bool = False) -> list[ConfigChange]:
    """Apply `text` all or nothing; idempotent. Returns the changes made."""
    plan = _plan(text, prune=prune)
    for row in plan.rows:
        row._change_reason = CHANGE_REASON  # read by django-simple-history
        row.save()
    for row in plan.deletions:
        row._change_reason = CHANGE_REASON
        row.delete()
    if any(change.section == "rule" for change in plan.changes):
        rule_set_bump()
    return plan.changes
