"""Data-quality rules, dataset checks, their runs, incidents, replay jobs and rule counters.

Rules and checks are rows that analysts edit in admin; the pure engine (`quality.engine`)
compiles them. Parameters are validated by the same engine in `clean()`, so a bad regex or
min > max is a form error and never a runtime crash.
"""

from quality.models.base import Severity
from quality.models.check_rollups import EventHour, NullHour
from quality.models.checks import AlertOutbox, CheckRun, QualityCheck, QualityIncident
from quality.models.intake import EventMinute, IntakeHour, IntakeRuleHour, IntakeWatermark
from quality.models.replay import ReplayJob
from quality.models.rules import QualityRule, RuleCounter, RuleSetVersion

__all__ = [
    "AlertOutbox",
    "CheckRun",
    "EventHour",
    "EventMinute",
    "IntakeHour",
    "IntakeRuleHour",
    "IntakeWatermark",
    "NullHour",
    "QualityCheck",
    "QualityIncident",
    "QualityRule",
    "ReplayJob",
    "RuleCounter",
    "RuleSetVersion",
    "Severity",
]
