"""Segment's identify and alias calls: not events, but calls of the person services (pure
mapping here; trackers.segment.api applies them). Bounded like events, since they skip the
event validator: ids are storable text of at most 128 characters, traits storable JSON of at
most 8 KB, the time skew-corrected like an event's and not in the future."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from events.schema import FieldError
from trackers.common import Translated, untranslatable
from trackers.mapping import identity_refusal
from trackers.segment.mapping import _dict, _first, _text

# Identity calls skip the event validator: ids and traits are bounded by
# trackers.mapping.identity_refusal, the time here.
IDENTITY_MIN_YEAR, IDENTITY_MAX_YEAR = 2, 9998
IDENTITY_MAX_FUTURE = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class IdentityCall:
    """An identify (traits for a person) or an alias (two ids of one person): not an event."""

    kind: str
    original: Any
    user_id: str
    anonymous_id: str = ""
    previous_id: str = ""
    traits: dict[str, Any] | None = None
    timestamp: dt.datetime | None = None


_DATETIME = TypeAdapter(dt.datetime).validate_python


def _as_utc(text: str) -> dt.datetime:
    moment = _DATETIME(text)
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _identity_time(
    message: dict[str, Any], batch_sent_at: Any, received_at: dt.datetime
) -> dt.datetime | FieldError:
    """The call's time, parsed and skew-corrected like an event's (same rules, same names)."""
    text = _first(message, ("originalTimestamp", "timestamp"))
    sent_text = _first(message, ("sentAt",)) or batch_sent_at
    if text is None:
        return received_at
    try:
        moment = _as_utc(text)
        sent = _as_utc(sent_text) if isinstance(sent_text, str) else None
    except (ValidationError, ValueError, OverflowError):
        return FieldError("timestamp", "iso8601", "must be an ISO-8601 date-time")
    try:
        if sent is not None:
            moment = received_at - (sent - moment)
    except OverflowError:
        moment = None
    if moment is None or not IDENTITY_MIN_YEAR <= moment.year <= IDENTITY_MAX_YEAR:
        return FieldError("timestamp", "date_range", "is out of the supported date range")
    if moment - received_at > IDENTITY_MAX_FUTURE:
        seconds = int(IDENTITY_MAX_FUTURE.total_seconds())
        return FieldError("timestamp", "not_in_future", f"is more than {seconds} s in the future")
    return moment


def identity_translate(
    message: Any, *, call: str, batch_sent_at: Any, received_at: dt.datetime
) -> IdentityCall | Translated:
    """An identify (user and/or anonymous id with traits) or an alias (previousId -> userId).
    Ids are bounded storable text, traits bounded JSON, the time skew-corrected."""
    ids = {name: _text(message.get(name)) for name in ("userId", "anonymousId", "previousId")}
    refusal = identity_refusal(ids, {})
    if refusal is not None:
        return untranslatable(message, *refusal)
    user_id, anonymous_id, previous_id = ids["userId"], ids["anonymousId"], ids["previousId"]
    when = _identity_time(message, batch_sent_at, received_at)
    if isinstance(when, FieldError):
        return untranslatable(message, when.field, when.rule, when.message)
    if call == "alias":
        if not user_id or not previous_id:
            return untranslatable(
                message, "previousId", "required", "an alias needs previousId and userId"
            )
        return IdentityCall("alias", message, user_id, previous_id=previous_id, timestamp=when)
    if not user_id and not anonymous_id:
        return untranslatable(message, "userId", "required", "userId or anonymousId is required")
    traits = message.get("traits") or _dict(message.get("context")).get("traits")
    if traits is not None and not isinstance(traits, dict):
        return untranslatable(message, "traits", "object", "traits must be a JSON object")
    refusal = identity_refusal({}, traits or {})
    if refusal is not None:
        return untranslatable(message, *refusal)
    return IdentityCall(
        "identify", message, user_id, anonymous_id, traits=traits or {}, timestamp=when
    )
