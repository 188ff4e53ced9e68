"""The Snowplow tracker protocol into our events: `GET /i` (one event in the query string) and
`POST /com.snowplowanalytics.snowplow/tp2` (a `payload_data` self-describing JSON holding a
list of events), mapped event by event. Pure: no Django.

Each event is a flat map of short names (the tracker protocol): `e` the kind (pv page view, se
structured, ue self-describing, tr/ti legacy transaction), `eid` the event id (our dedupe key),
`dtm`/`stm` the device's created and sent times (skew correction), `ttm` a true timestamp,
`uid`/`duid`/`sid` the user, anonymous and session ids, `url`/`refr` the page, `ue_pr`/`ue_px`
and `co`/`cx` the self-describing event and its entities (JSON or base64). `aid`, the tracker's
app id, carries our ingestion key (ADR 0017).
"""

from __future__ import annotations

import binascii
import functools
import re
from typing import Any, NamedTuple

import orjson

from trackers.common import datetime_of_millis
from trackers.mapping import IdentityCall, MappedEvent, identity_refusal, text_or_none
from trackers.snowplow_kinds import SelfDescribing, kind_fields_into, self_describing_digest

PAYLOAD_DATA_SCHEMA = re.compile(
    r"^iglu:com\.snowplowanalytics\.snowplow/payload_data/jsonschema/1-\d+-\d+$"
)
# The platform (`p`) says the device class for some platforms; web and server events leave it
# to the User-Agent.
PLATFORM_DEVICE_TYPES = {"pc": "desktop", "mob": "mobile", "tv": "other", "cnsl": "other"}
PLATFORM_DEVICE_TYPES |= {"iot": "other", "headset": "other"}
# What a Snowplow collector records as the network user id when it sets no cookie: the
# anonymous id of an event that names no user at all (a server tracker without a Subject).
COOKIELESS_USER = "00000000-0000-4000-a000-000000000000"
# Not kept in `properties` either: the tracker's own name and version (`tna`, `tv`), like
# Segment's `context.library`; they stay in the original message (ADR 0044).
_MAPPED = frozenset(
    {"e", "eid", "dtm", "stm", "ttm", "aid", "uid", "duid", "nuid", "tnuid", "sid", "url"}
    | {"refr", "ua", "ip", "ue_pr", "ue_px", "co", "cx", "p", "tv", "tna"}
)


class SnowplowBodyError(ValueError):
    """A tp2 body that is not a payload_data list: refused as a whole (field and rule named)."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field, self.rule, self.message = field, rule, message


def snowplow_body_events(body: Any) -> list[Any]:
    """The events of a tp2 POST body (`{"schema": payload_data, "data": [...]}`)."""
    if not isinstance(body, dict):
        raise SnowplowBodyError("body", "object", "must be a payload_data self-describing JSON")
    schema = body.get("schema")
    if not isinstance(schema, str) or not PAYLOAD_DATA_SCHEMA.match(schema):
        raise SnowplowBodyError(
            "schema", "payload_data", "must be iglu:com.snowplowanalytics.snowplow/payload_data"
        )
    data = body.get("data")
    if not isinstance(data, list):
        raise SnowplowBodyError("data", "list", "must be a list of events")
    return data


def snowplow_key(events: list[Any]) -> str | None:
    """The app id of the first event that has one: the tracker's `app_id` is our key."""
    for event in events:
        if isinstance(event, dict) and (key := text_or_none(event.get("aid"))):
            return key
    return None


def _epoch_millis(value: Any, name: str, errors: list) -> int | None:
    """Epoch milliseconds (int or digit string); else None, and an error unless it is empty."""
    if type(value) is str and value.isdecimal() and len(value) <= 15:
        return int(value)
    if type(value) is int and value >= 0:
        return value
    if value != "":
        errors.append((name, "epoch_millis", "must be epoch milliseconds"))
    return None


def _decoded(event: dict, json_field: str, base64_field: str, errors: list) -> Any:
    """The decoded self-describing value (None when absent or undecodable: error listed)."""
    raw, field = event.get(json_field), json_field
    if raw is None:
        raw, field = event.get(base64_field), base64_field
        if raw is None:
            return None
    value = _decoded_value(raw, field is base64_field)
    if value is _UNDECODABLE:
        errors.append((field, "json", f"{field} must be {_ENCODED[field]}"))
        return None
    return value


def _decoded_value(raw: Any, base64: bool) -> Any:
    """JSON (base64 of JSON when `base64`), or _UNDECODABLE."""
    if base64:
        if type(raw) is not str:
            return _UNDECODABLE
        try:
            # Either base64 alphabet (trackers send the URL-safe one); padding optional. What
            # base64.urlsafe_b64decode does, in C without its Python layers.
            # (a2b_base64 takes ASCII text: a str with other characters is a ValueError.)
            raw = binascii.a2b_base64(raw.replace("-", "+").replace("_", "/") + "==")
        except (binascii.Error, ValueError):
            return _UNDECODABLE
    elif not isinstance(raw, str | bytes):
        return _UNDECODABLE
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _UNDECODABLE


@functools.lru_cache(maxsize=512)
def _unstruct_digest(raw: str, base64: bool) -> Any:
    """The self-describing event's digest (or _UNDECODABLE), once per distinct text: a tracker
    sends the same one over and over (an e-commerce action's `ue_px` is its type). Shared
    between events, so nothing changes it (trackers.snowplow_kinds copies what it keeps)."""
    value = _decoded_value(raw, base64)
    return value if value is _UNDECODABLE else self_describing_digest(value)


_UNDECODABLE = object()
_UNSTRUCT_MEMO_MAX_CHARS = 1024  # longer ones are rarely repeated: decoded, not remembered


def _unstruct(event: dict, errors: list) -> SelfDescribing | None:
    """The self-describing event (`ue_pr` JSON, else `ue_px` base64) as its digest; None when
    absent or undecodable (error listed)."""
    raw, field = event.get("ue_pr"), "ue_pr"
    if raw is None:
        raw, field = event.get("ue_px"), "ue_px"
    if type(raw) is str and len(raw) <= _UNSTRUCT_MEMO_MAX_CHARS:
        digest = _unstruct_digest(raw, field == "ue_px")
        if digest is not _UNDECODABLE:
            return digest
        errors.append((field, "json", f"{field} must be {_ENCODED[field]}"))
        return None
    value = _decoded(event, "ue_pr", "ue_px", errors)
    return None if value is None else self_describing_digest(value)


def snowplow_event_map(event: Any) -> MappedEvent:
    """One tracker-protocol event as our event (errors listed when it cannot be read). The
    payload gets only the fields the event carries; one pass, as it runs for every event."""
    if not isinstance(event, dict):
        return MappedEvent(payload={}, original=event, errors=[("event", "object", _NOT_OBJ)])
    get = event.get
    errors: list[tuple[str, str, str]] = []
    keys = _plan(tuple(event))
    unstruct = _unstruct(event, errors) if keys.unstruct else None
    contexts = _decoded(event, "co", "cx", errors) if keys.contexts else None
    true_ms = created_ms = sent_ms = None
    if keys.times:
        ttm, dtm, stm = get("ttm"), get("dtm"), get("stm")
        true_ms = None if ttm is None else _epoch_millis(ttm, "ttm", errors)
        created_ms = None if dtm is None else _epoch_millis(dtm, "dtm", errors)
        sent_ms = None if stm is None else _epoch_millis(stm, "stm", errors)
        if true_ms is not None:
            sent_ms = None
        elif created_ms is None:
            # No event time (a hand-written pixel): it happened when sent, else when received.
            created_ms, sent_ms = sent_ms, None
    payload: dict[str, Any] = {}
    for name, column in keys.texts:
        value = event[name]
        if type(value) is not str:
            value = text_or_none(value)
        if value:  # text_or_none gives no empty text: "" is absent
            payload[column] = value
    moment = true_ms if true_ms is not None else created_ms
    # Times as aware datetimes: the schema layer takes them as they are (no ISO text to
    # write here and parse there).
    if moment is not None and (when := datetime_of_millis(moment)) is not None:
        payload["timestamp"] = when
    if sent_ms is not None and (when := datetime_of_millis(sent_ms)) is not None:
        payload["sent_at"] = when
    if "anonymous_id" not in payload and "user_id" not in payload:
        payload["anonymous_id"] = COOKIELESS_USER
    platform = get("p")
    if type(platform) is str and (device_type := PLATFORM_DEVICE_TYPES.get(platform)):
        payload["device_type"] = device_type
    extra = {key: event[key] for key in keys.extra}
    kind_fields_into(payload, event, unstruct, contexts, extra, errors)
    user_agent, ip = get("ua"), get("ip")
    return MappedEvent(
        payload,
        event,
        payload.get("event_id"),
        None if user_agent is None else text_or_none(user_agent),
        None if ip is None else text_or_none(ip),
        errors,
    )


# Tracker fields that are text columns of ours. `duid`, `nuid` and `tnuid` are the anonymous id
# in that order of preference (the first present wins, as each is read only when no earlier
# one gave text).
_TEXT_FIELDS = {
    "eid": "event_id",
    "uid": "user_id",
    "tnuid": "anonymous_id",
    "nuid": "anonymous_id",
    "duid": "anonymous_id",
    "sid": "session_id",
    "url": "page_url",
    "refr": "referrer",
}


class _KeyPlan(NamedTuple):
    """What to read from an event with these keys: (field, column) of the text fields present,
    later ones overriding (so `duid` over `nuid` over `tnuid`), the names kept as properties,
    and whether a self-describing event, entities or times are there at all."""

    texts: tuple[tuple[str, str], ...]
    extra: tuple[str, ...]
    unstruct: bool
    contexts: bool
    times: bool


@functools.lru_cache(maxsize=256)
def _plan(keys: tuple[str, ...]) -> _KeyPlan:
    """Memoised per key set: a tracker sends events of a few shapes."""
    present = set(keys)
    return _KeyPlan(
        texts=tuple((name, column) for name, column in _TEXT_FIELDS.items() if name in present),
        extra=tuple(key for key in keys if key not in _MAPPED and key[:3] != "se_"),
        unstruct=bool(present & {"ue_pr", "ue_px"}),
        contexts=bool(present & {"co", "cx"}),
        times=bool(present & {"ttm", "dtm", "stm"}),
    )


_NOT_OBJ = "each event must be a JSON object"
_ENCODED = {
    "ue_pr": "a self-describing JSON",
    "ue_px": "base64 of a self-describing JSON",
    "co": "a contexts JSON",
    "cx": "base64 of a contexts JSON",
}


LINKS_REMEMBERED = 10_000


def snowplow_user_links(events: list[Any], seen: dict[tuple[str, str], None]) -> list[IdentityCall]:
    """The browser tracker's identify is `setUserId`: from then on its events carry the user id
    `uid` beside the browser's `duid`. Each new (duid, uid) pair links the two (an alias call,
    ADR 0037), once per process: `seen` remembers the last LINKS_REMEMBERED pairs, so an
    identified visitor's every request does not take the id graph's lock again."""
    calls = []
    for event in events:
        if not isinstance(event, dict) or "duid" not in event or "uid" not in event:
            continue  # most events: a server tracker's (no duid) or an anonymous visitor's
        user_id, device_id = text_or_none(event["uid"]), text_or_none(event["duid"])
        if user_id is None or device_id is None or device_id == user_id:
            continue
        if identity_refusal({"uid": user_id, "duid": device_id}, {}) is not None:
            continue  # the event itself is refused by validation, with the field named
        if (device_id, user_id) in seen:
            continue
        seen[(device_id, user_id)] = None
        if len(seen) > LINKS_REMEMBERED:
            del seen[next(iter(seen))]
        calls.append(IdentityCall("alias", user_id, anonymous_id=device_id, original=event))
    return calls
