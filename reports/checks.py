"""Start-up checks of the reports' settings: a funnel the folds can count."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error

from events.schema import EVENT_TYPES
from reports.models.grains import ECOMMERCE_FUNNEL_STEPS

MAX_NAME_CHARS = 128  # events.Event.event_type


def funnel_steps_errors(steps: list[str]) -> list[str]:
    """Why `steps` is not a funnel: the five e-commerce steps must stay, in order, with purchase
    last (conversion and cart abandonment are defined by them); other steps are custom event
    names, each once."""
    problems = []
    if [step for step in steps if step in ECOMMERCE_FUNNEL_STEPS] != list(ECOMMERCE_FUNNEL_STEPS):
        problems.append(f"must hold {', '.join(ECOMMERCE_FUNNEL_STEPS)} once each, in this order")
    if steps and steps[-1] != "purchase":
        problems.append("must end with purchase")
    if len(set(steps)) != len(steps):
        problems.append("must not repeat a step")
    for step in steps:
        if step in EVENT_TYPES and step not in ECOMMERCE_FUNNEL_STEPS:
            problems.append(f"{step!r} is not a funnel step")
        elif not step.isprintable() or not 0 < len(step) <= MAX_NAME_CHARS:
            problems.append(f"{step[:40]!r} is not an event name")
    return problems


def funnel_steps_check(app_configs=None, **kwargs) -> list[CheckMessage]:
    return [
        Error(f"REPORTS_FUNNEL_STEPS {problem}.", id="reports.E001")
        for problem in funnel_steps_errors(list(settings.REPORTS_FUNNEL_STEPS))
    ]
