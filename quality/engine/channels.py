"""Alert channel specs: where an incident alert goes. A spec is one string,
`webhook:<url>` (the generic JSON body), `slack:<url>` (a Slack-compatible incoming webhook:
`{"text", "blocks"}`) or `email:<address>`; a check or rule lists its own, or none for the
global default (QUALITY_ALERT_CHANNELS). Pure: validated in model `clean()` and parsed by the
outbox at delivery time."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

CHANNEL_KINDS = ("webhook", "slack", "email")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ChannelSpecError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Channel:
    kind: str
    target: str

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.target}"


def channel_parse(spec: object) -> Channel:
    if not isinstance(spec, str) or ":" not in spec:
        raise ChannelSpecError(
            f"{spec!r} is not a channel: write webhook:<url>, slack:<url> or email:<address>."
        )
    kind, _, target = spec.partition(":")
    kind, target = kind.strip().lower(), target.strip()
    if kind not in CHANNEL_KINDS:
        raise ChannelSpecError(f"Unknown channel kind {kind!r}; use webhook, slack or email.")
    if kind == "email" and not _EMAIL.match(target):
        raise ChannelSpecError(f"{target!r} is not an e-mail address.")
    if kind != "email" and not _URL.match(target):
        raise ChannelSpecError(f"{target!r} is not an http(s) URL.")
    return Channel(kind, target)


def channels_parse(specs: object) -> list[Channel]:
    """Parse a list of specs (duplicates dropped, order kept); raise on the first bad one."""
    if not isinstance(specs, list | tuple):
        raise ChannelSpecError("Give a list of channels, or an empty list for the default.")
    channels: list[Channel] = []
    for spec in specs:
        channel = channel_parse(spec)
        if channel not in channels:
            channels.append(channel)
    return channels


def _metric(incident: dict) -> str:
    threshold = incident.get("threshold")
    suffix = f" (threshold {threshold:g})" if threshold is not None else ""
    return f"{incident['metric_value']:.4g}{suffix}"


def slack_message(alert: dict, link: str = "") -> dict:
    """A Slack-compatible incoming-webhook body for the generic alert payload: `text` (the
    notification line) and `blocks` (the same, readable in the channel)."""
    incident = alert["incident"]
    icon = {"opened": ":rotating_light:", "resolved": ":white_check_mark:"}.get(
        alert["event"], ":warning:"
    )
    headline = f"{icon} [{incident['severity']}] {incident['title']} — {alert['event']}"
    facts = [
        f"*Status:* {incident['status']}",
        f"*Occurrences:* {incident['occurrences']}",
    ]
    if incident.get("metric_value") is not None:
        facts.append(
            f"*Metric:* {incident['metric_value']:.4g} (threshold {incident['threshold']:g})"
        )
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": fact} for fact in facts]},
    ]
    change = (alert.get("change") or {}).get("summary")
    if change:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": change}})
    if incident.get("message"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": incident["message"]}})
    context = f"delivery {alert['delivery_id']}"
    if link:
        context = f"<{link}|Open the check / incident #{incident['id']}> · {context}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": headline, "blocks": blocks}


def email_message(alert: dict, link: str = "") -> tuple[str, str]:
    """(subject, plain-text body) of an alert e-mail."""
    incident = alert["incident"]
    subject = f"[{incident['severity']}] {incident['title']} ({alert['event']})"
    lines = [
        f"Incident #{incident['id']}: {incident['title']}",
        f"Event: {alert['event']}; status {incident['status']}; "
        f"occurrences {incident['occurrences']}",
    ]
    if incident.get("metric_value") is not None:
        lines.append(
            f"Metric: {incident['metric_value']:.4g} (threshold {incident['threshold']:g})"
        )
    change = (alert.get("change") or {}).get("summary")
    if change:
        lines.append(change)
    if incident.get("message"):
        lines.append(incident["message"])
    if link:
        lines.append(link)
    lines.append(f"Delivery id: {alert['delivery_id']}")
    return subject, "\n".join(lines)


def specs_of(channels: Sequence[Channel]) -> list[str]:
    return [channel.spec for channel in channels]
