"""Shared by the quality models: severities, the alert-channel field and validators."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from events.schema import EVENT_TYPES
from quality.engine import channels as channel_engine


def validate_channels(value: object) -> None:
    try:
        channel_engine.channels_parse(value)
    except channel_engine.ChannelSpecError as exc:
        raise ValidationError(str(exc)) from None


def channels_field() -> models.JSONField:
    return models.JSONField(
        default=list,
        blank=True,
        validators=[validate_channels],
        help_text='Alert channels, e.g. ["slack:https://hooks.slack.com/...", '
        '"email:oncall@example.com", "webhook:https://..."]; empty = the global default '
        "(QUALITY_ALERT_CHANNELS).",
    )


class Severity(models.TextChoices):
    ERROR = "error", "error (reject into quarantine)"
    WARNING = "warning", "warning (accept and record)"


def validate_event_types(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Give a list of event types, or an empty list for all.")
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(unknown)}.")
