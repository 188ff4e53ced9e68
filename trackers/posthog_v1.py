"""PostHog's capture v1 (`POST /i/v1/analytics/events`, posthog-python 7.x with
`capture_mode="v1"` or POSTHOG_CAPTURE_MODE=v1), and the remote config posthog-js loads on
start. Pure: no Django.

A v1 body is `{"created_at", "batch": [event, ...], "historical_migration"?}`, the key in
`Authorization: Bearer`. An event is the legacy message reshaped: `session_id` and `window_id`
at the top, SDK switches in a typed `options` object, `$lib` in the `PostHog-Sdk-Info` header
instead of the properties. `v1_message_legacy` turns one back into the legacy shape, so that
the one PostHog mapping (trackers.posthog) reads both. The answer is per event uuid:
`{"results": {uuid: {"result": "ok" | "drop", "details"?}}}` (the SDK resends only `retry`).
"""

from __future__ import annotations

import json
from typing import Any

from trackers.posthog import PosthogBodyError

# options -> the legacy property it stands for
_OPTION_PROPERTIES = {
    "cookieless_mode": "$cookieless_mode",
    "disable_skew_correction": "$ignore_sent_at",
    "product_tour_id": "$product_tour_id",
    "process_person_profile": "$process_person_profile",
}
_TOP_LEVEL_PROPERTIES = {"session_id": "$session_id", "window_id": "$window_id"}
RESULT_OK, RESULT_DROP = "ok", "drop"


def posthog_v1_messages(body: Any) -> tuple[list[Any], Any]:
    """(events, the batch's created_at: its send time) of a v1 body."""
    if not isinstance(body, dict):
        raise PosthogBodyError("body", "object", 'must be a JSON object: {"batch": [...]}')
    events = body.get("batch")
    if not isinstance(events, list):
        rule = "required" if events is None else "list"
        raise PosthogBodyError("batch", rule, "must be a list of events")
    created_at = body.get("created_at")
    if created_at is not None and not isinstance(created_at, str):
        raise PosthogBodyError("created_at", "string", "must be an ISO-8601 string")
    return events, created_at


def sdk_lib(header: str) -> tuple[str, str]:
    """`PostHog-Sdk-Info: posthog-python/7.9.1` -> ("posthog-python", "7.9.1")."""
    name, _, version = header.strip().partition("/")
    return name[:64], version[:32]


def v1_message_legacy(event: Any, *, lib: tuple[str, str] = ("", "")) -> Any:
    """A v1 event as the legacy message it was made from (anything not an object as is, for
    the mapping to refuse naming the field)."""
    if not isinstance(event, dict):
        return event
    properties = event.get("properties")
    properties = dict(properties) if isinstance(properties, dict) else {}
    options = event.get("options")
    for option, value in (options if isinstance(options, dict) else {}).items():
        if option in _OPTION_PROPERTIES:
            properties[_OPTION_PROPERTIES[option]] = value
    for field, name in _TOP_LEVEL_PROPERTIES.items():
        if isinstance(event.get(field), str):
            properties[name] = event[field]
    name, version = lib
    if name:
        properties.setdefault("$lib", name)
        if version:
            properties.setdefault("$lib_version", version)
    message = {key: value for key, value in event.items() if key not in ("options", "properties")}
    message.pop("session_id", None)
    message.pop("window_id", None)
    message["properties"] = properties
    return message


def v1_result(status: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One event's directive: stored, a duplicate or an identity call are `ok`; quarantined is
    `drop` with the reasons (resending would not help: a fixed rule lets it in by replay)."""
    if status != "rejected":
        return {"result": RESULT_OK}
    return {"result": RESULT_DROP, "details": json.dumps(errors or [])[:1000]}


def remote_config(token: str) -> dict[str, Any]:
    """posthog-js's remote config, everything optional off: capture at /e/, no flags (so no
    /flags/ call follows), no recording, heatmaps or site apps. `surveys` is left out, not
    false: posthog-js 1.449 loads its surveys script from our host for any value, even false
    (ADR 0037)."""
    return {
        "token": token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": False,
        "captureDeadClicks": False,
        "capturePerformance": False,
        "autocapture_opt_out": False,
        "autocaptureExceptions": False,
        "analytics": {"endpoint": "/e/"},
        "elementsChainAsString": True,
        "sessionRecording": False,
        "heatmaps": False,
        "productTours": False,
        "defaultIdentifiedOnly": True,
    }
