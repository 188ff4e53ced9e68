"""Query parameters of the event reads (`GET /api/v1/events`, `/events/recent`) and the
opaque page cursor. Each bad parameter is a 400 naming it and the rule it broke; a parameter
the endpoint does not know is refused too (rule `unknown_parameter`), since a misspelt filter
silently ignored would answer with unfiltered rows."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from typing import Any

import orjson
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.export_selectors import ORDER_FIELDS, EventFilters, KeysetPosition
from events.schema import (
    DEVICE_TYPES,
    EVENT_NAME_MAX_CHARS,
    EVENT_TYPES,
    PRINTABLE_NAME,
    TIMESTAMP_MAX_YEAR,
    TIMESTAMP_MIN_YEAR,
    TIMESTAMP_RANGE_MESSAGE,
    TIMESTAMP_YEAR_PATTERN,
)

LIST_MAX_LIMIT = 1000
RECENT_MAX_OFFSET = 10_000
# Parameters DRF itself reads (the browsable API's ?format=).
_FRAMEWORK_PARAMETERS = frozenset({"format"})
_FILTER_NAMES = tuple(EventFilters.__dataclass_fields__)


@extend_schema_field({"type": "string", "format": "date-time", "pattern": TIMESTAMP_YEAR_PATTERN})
class BoundedDateTimeField(serializers.DateTimeField):
    """A date-time in the years the event schema accepts (so no UTC offset overflows)."""

    default_error_messages = {"date_range": TIMESTAMP_RANGE_MESSAGE}

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        # The year as written, before its offset applies: what the document's pattern bounds.
        if not TIMESTAMP_MIN_YEAR <= value.year <= TIMESTAMP_MAX_YEAR:
            self.fail("date_range")
        return super().enforce_timezone(value)


class EventFilterQuery(serializers.Serializer):
    """The filters both reads share. Time ranges are half-open: since <= t < until."""

    since = BoundedDateTimeField(required=False, help_text="Event time at or after.")
    until = BoundedDateTimeField(required=False, help_text="Event time before.")
    received_since = BoundedDateTimeField(required=False, help_text="Receipt time at or after.")
    received_until = BoundedDateTimeField(required=False, help_text="Receipt time before.")
    event_type = serializers.RegexField(
        PRINTABLE_NAME,
        max_length=EVENT_NAME_MAX_CHARS,
        required=False,
        trim_whitespace=False,
        help_text=f"One of {', '.join(EVENT_TYPES)}, or a custom event name.",
    )
    # As stored: untrimmed, and never with NUL (the document's pattern says so).
    user_id = serializers.RegexField(
        r"^[^\x00]*$", max_length=128, required=False, trim_whitespace=False
    )
    session_id = serializers.RegexField(
        r"^[^\x00]*$", max_length=128, required=False, trim_whitespace=False
    )
    country = serializers.RegexField(
        r"^[A-Za-z]{2}$", required=False, help_text="ISO 3166-1 alpha-2, e.g. US"
    )
    device_type = serializers.ChoiceField(choices=list(DEVICE_TYPES), required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields) - _FRAMEWORK_PARAMETERS)
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown query parameter."] for name in unknown}, "unknown_parameter"
            )
        for low, high in (("since", "until"), ("received_since", "received_until")):
            if low in attrs and high in attrs and attrs[high] <= attrs[low]:
                raise serializers.ValidationError({high: [f"Must be after {low}."]}, "after_since")
        if "country" in attrs:
            attrs["country"] = attrs["country"].upper()
        return attrs

    def filters(self) -> EventFilters:
        data = self.validated_data
        return EventFilters(**{name: data.get(name) for name in _FILTER_NAMES})


# /events/recent's orders: receipt first, so an event just sent (whatever its timestamp, such
# as the README's 2024 example) is on top; `timestamp` for the newest by event time.
RECENT_ORDERS = {"received": "received_at", "received_at": "received_at", "timestamp": "timestamp"}


class EventRecentQuery(EventFilterQuery):
    order = serializers.ChoiceField(
        choices=list(RECENT_ORDERS),
        default="received",
        help_text="Newest first by receipt (received, the default) or by event time (timestamp).",
    )
    limit = serializers.IntegerField(min_value=1, max_value=LIST_MAX_LIMIT, default=10)
    offset = serializers.IntegerField(
        min_value=0,
        max_value=RECENT_MAX_OFFSET,
        default=0,
        help_text="Rows to skip; for deeper reads page GET /api/v1/events with its cursor.",
    )


class EventListQuery(EventFilterQuery):
    order = serializers.ChoiceField(
        choices=list(ORDER_FIELDS),
        default="received_at",
        help_text="Order of the pages: (order, id) ascending.",
    )
    limit = serializers.IntegerField(min_value=1, max_value=LIST_MAX_LIMIT, default=100)
    cursor = serializers.CharField(
        required=False, max_length=512, help_text="next_cursor of the previous page."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if "cursor" in attrs:
            attrs["after"] = cursor_decode(
                attrs["cursor"], attrs["order"], self._fingerprint(attrs)
            )
        return attrs

    def _fingerprint(self, attrs: dict[str, Any]) -> str:
        """A short digest of the filters and order, so that a cursor is refused with others."""
        items = [(name, str(attrs.get(name))) for name in (*_FILTER_NAMES, "order")]
        return hashlib.sha256(orjson.dumps(items)).hexdigest()[:16]

    def cursor_after(self, position: KeysetPosition) -> str:
        return cursor_encode(
            position, self.validated_data["order"], self._fingerprint(self.validated_data)
        )


def cursor_encode(position: KeysetPosition, order: str, fingerprint: str) -> str:
    """An opaque, URL-safe token for the place after `position` in `order`."""
    data = {"o": order, "t": position.value.isoformat(), "i": position.pk, "f": fingerprint}
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


_NOT_OURS = "Not a cursor from this API; pass next_cursor as given."


def _cursor_error(message: str, rule: str) -> serializers.ValidationError:
    return serializers.ValidationError({"cursor": [message]}, rule)


def cursor_decode(token: str, order: str, fingerprint: str) -> KeysetPosition:
    """The position a cursor names; 400 (field cursor) when it is not one of ours, or was made
    for another order or other filters."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position = KeysetPosition(dt.datetime.fromisoformat(data["t"]), int(data["i"]))
        made_for = (data["o"], data["f"])
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise _cursor_error(_NOT_OURS, "invalid") from None
    if position.value.tzinfo is None:
        raise _cursor_error(_NOT_OURS, "invalid")
    if made_for != (order, fingerprint):
        raise _cursor_error(
            "This cursor belongs to other filters or another order; keep them while paging.",
            "filters_mismatch",
        )
    return position
