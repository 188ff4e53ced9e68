"""Each protocol's translation of one quarantined message, for its replay (ADR 0029): the same
mapping its endpoint ran, given what that endpoint read from the request (kept with the row as
`translation`), the row's key and its receipt time; registered with events at start-up."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from events.services import Retranslated, protocol_shape_register, retranslator_register
from trackers.api_posthog import SOURCE as POSTHOG
from trackers.api_snowplow import SOURCE as SNOWPLOW
from trackers.common import Translated
from trackers.mapping import IdentityCall as MappedIdentityCall
from trackers.mapping import MappedEvent
from trackers.posthog import posthog_message_map
from trackers.posthog_v1 import sdk_lib, v1_message_legacy
from trackers.segment.api import identity_call_apply
from trackers.segment.identity import IdentityCall as SegmentIdentityCall
from trackers.segment.mapping import CALLS as SEGMENT_CALLS
from trackers.segment.mapping import SOURCE as SEGMENT
from trackers.segment.messages import message_translate
from trackers.snowplow import snowplow_event_map
from trackers.translate import identity_apply, mapped_translate


def _retranslated(item: Translated) -> Retranslated:
    if item.error is not None:
        return Retranslated(error=item.error)
    return Retranslated(payload=item.payload, user_agent=item.user_agent, ip=item.ip)


def segment_retranslate(
    original: Any, *, translation: Mapping[str, Any], key_id: int | None, received_at: dt.datetime
) -> Retranslated:
    item = message_translate(
        original,
        call=translation.get("call"),
        key_id=key_id,
        batch_sent_at=translation.get("sent_at"),
        received_at=received_at,
    )
    if isinstance(item, SegmentIdentityCall):
        return Retranslated(
            identity_apply=functools.partial(identity_call_apply, item, received_at)
        )
    return _retranslated(item)


def _mapped_retranslate(
    source: str, mapped: Any, key_id: int | None, received_at: dt.datetime
) -> Retranslated:
    if isinstance(mapped, MappedIdentityCall):
        return Retranslated(
            identity_apply=functools.partial(identity_apply, [mapped], source=source)
        )
    return _retranslated(
        mapped_translate(mapped, source=source, key_id=key_id, received_at=received_at)
    )


def posthog_retranslate(
    original: Any, *, translation: Mapping[str, Any], key_id: int | None, received_at: dt.datetime
) -> Retranslated:
    if translation.get("format") != "v1":
        mapped = posthog_message_map(original, sent_at=translation.get("sent_at"))
        return _mapped_retranslate(POSTHOG, mapped, key_id, received_at)
    # Capture v1 (api_posthog.PosthogCaptureV1Api): mapped as its legacy message, kept as sent.
    lib = sdk_lib(translation.get("sdk", ""))
    mapped = posthog_message_map(
        v1_message_legacy(original, lib=lib), sent_at=translation.get("sent_at")
    )
    if isinstance(mapped, MappedEvent):
        mapped = dataclasses.replace(mapped, original=original)
    return _mapped_retranslate(POSTHOG, mapped, key_id, received_at)


def snowplow_retranslate(
    original: Any, *, translation: Mapping[str, Any], key_id: int | None, received_at: dt.datetime
) -> Retranslated:
    return _mapped_retranslate(SNOWPLOW, snowplow_event_map(original), key_id, received_at)


_SNOWPLOW_KINDS = frozenset({"pv", "pp", "se", "ue", "tr", "ti"})


def segment_shaped(message: dict[str, Any]) -> bool:
    """A Segment message names its call `type` and carries camelCase ids."""
    ids = ("messageId", "anonymousId", "userId", "previousId")
    return message.get("type") in SEGMENT_CALLS and any(name in message for name in ids)


def posthog_shaped(message: dict[str, Any]) -> bool:
    """A PostHog message: an `event` name, no `type`, and a distinct id or token somewhere."""
    if not isinstance(message.get("event"), str) or "type" in message:
        return False
    properties = message.get("properties")
    in_properties = isinstance(properties, dict) and (
        "distinct_id" in properties or "token" in properties
    )
    return "distinct_id" in message or in_properties


def snowplow_shaped(message: dict[str, Any]) -> bool:
    """A tracker-protocol event: its kind `e` and one of the fields every tracker sends."""
    return message.get("e") in _SNOWPLOW_KINDS and any(k in message for k in ("eid", "tv", "aid"))


def retranslators_register() -> None:
    retranslator_register(SEGMENT, segment_retranslate)
    retranslator_register(POSTHOG, posthog_retranslate)
    retranslator_register(SNOWPLOW, snowplow_retranslate)
    protocol_shape_register(SEGMENT, segment_shaped)
    protocol_shape_register(POSTHOG, posthog_shaped)
    protocol_shape_register(SNOWPLOW, snowplow_shaped)
