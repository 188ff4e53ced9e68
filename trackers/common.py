"""What every tracker protocol shares, so that a protocol module is only its mapping (ADR 0016).

A protocol view (Segment's /v1/batch, PostHog's /batch/, Snowplow's /i ...) is a DRF view with
`TrackerKeyAuthentication`, `events.permissions.CanIngest`, `events.throttling.IngestThrottle`,
`AnyJSONParser` and `schema = TrackerAutoSchema()`, and does four things, each with one helper:

1. the key: `TrackerKeyAuthentication` finds it in the HTTP Basic user name, `Authorization:
   Bearer`, `X-API-Key`, or a query parameter / body field the view names in
   `key_query_params` / `key_body_fields`; `key_id_of(request)` is its id;
2. the body: `parsed_body(request)` (gzip inflated with a cap; a body refused as a whole is
   kept as one rejected row, as /events does; `request_refuse` for a wrong shape);
3. each foreign message becomes a `Translated` (our wire-format payload, or the reason it
   cannot be; always the original, and the User-Agent/IP it states), its `event_id` from
   `trackers.event_ids.event_id_for` (uuid5 of the protocol's message id per source and key:
   re-sends dedupe);
   `translated_ingest` stores them all through `events.services.event_batch_ingest`
   (validation, rules, dedupe, derivation, quarantine, metrics: the same as /events);
4. the answer, in the protocol's own shape, from the outcomes (`outcome_counts`).

Clock skew: a translation puts the client's event time in `timestamp` and the client's send time
in `sent_at`; the ingestion service corrects (timestamp = received_at - (sent_at - timestamp)),
as for our own API. `iso_from_epoch_millis` turns epoch milliseconds (Snowplow) into such text.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from events import services
from events.authentication import IngestionKeyAuthentication, KeyPrincipal, key_principal_lookup
from events.derivation import ClientContext
from events.parsers import (
    BoundedJSONParser,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedContentEncoding,
)
from events.schema import FieldError, text_safe
from trackers.openapi import TrackerAutoSchema

__all__ = ["TrackerAutoSchema"]  # protocol views use it (and importing it registers the scheme)


def iso_from_epoch_millis(value: Any) -> str | None:
    """ISO-8601 UTC text of epoch milliseconds (int or digit string); None when not one."""
    if isinstance(value, str) and value.isdecimal() and len(value) <= 15:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return iso_of_millis(value)


def iso_of_millis(millis: int) -> str | None:
    """`iso_from_epoch_millis` of an int."""
    moment = datetime_of_millis(millis)
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def datetime_of_millis(millis: int) -> dt.datetime | None:
    """The aware UTC datetime of epoch milliseconds (an int), None when out of range. A
    translation may hand it to the ingestion service as the time itself: writing it as
    ISO text cost about 1 µs (isoformat), and the schema layer then parsed the text again."""
    try:
        return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


# --- 1. the key -----------------------------------------------------------------------------


def basic_user_name(request: Any) -> str | None:
    """The user name of `Authorization: Basic base64(user:password)` (Segment's write key);
    None when the header is absent, not Basic, or not decodable."""
    meta = getattr(request, "_request", request).META
    header = meta.get("HTTP_AUTHORIZATION", "")
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user.strip() or None


def principal_for_key(raw_key: str) -> KeyPrincipal:
    """The principal of a raw key, or AuthenticationFailed (401) naming why."""
    principal = key_principal_lookup(raw_key)
    if principal is None:
        raise exceptions.AuthenticationFailed("Invalid or inactive ingestion key.")
    if principal.is_expired(timezone.now()):
        raise exceptions.AuthenticationFailed("This ingestion key has expired.")
    return principal


def _body_key(request: Any, fields: Sequence[str]) -> str | None:
    """A key in the parsed body (a JSON object's top-level field). Reading request.data parses
    the body once (DRF caches it); a parse error is kept for `parsed_body`, so that a request
    allowed without a key is refused (and kept) by the view as /events does."""
    try:
        data = request.data
    except (MalformedJson, PayloadTooLarge, UnsupportedContentEncoding) as exc:
        # DRF answers {} to later reads of request.data: the view refuses the body with this.
        request._tracker_body_error = exc
        return None
    if not isinstance(data, dict):
        return None
    for name in fields:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class TrackerKeyAuthentication(authentication.BaseAuthentication):
    """Our ingestion keys, wherever a tracker SDK puts them: the HTTP Basic user name, our own
    headers (Bearer, X-API-Key), then the view's `key_query_params` and `key_body_fields`."""

    def authenticate(self, request):
        raw_key = basic_user_name(request)
        if raw_key is None:
            found = IngestionKeyAuthentication().authenticate(request)
            if found is not None:
                return found
            view = request.parser_context.get("view") if request.parser_context else None
            raw_key = _query_key(request, getattr(view, "key_query_params", ()))
            if raw_key is None and getattr(view, "key_body_fields", ()):
                raw_key = _body_key(request, view.key_body_fields)
        if raw_key is None:
            return None
        principal = principal_for_key(raw_key)
        return principal, principal

    def authenticate_header(self, request) -> str:
        return 'Basic realm="ingestion"'


def _query_key(request: Any, params: Iterable[str]) -> str | None:
    query = request.query_params
    for name in params:
        value = query.get(name)
        if value and value.strip():
            return value.strip()
    return None


# --- the body -------------------------------------------------------------------------------


class AnyJSONParser(BoundedJSONParser):
    """Our bounded JSON parser (gzip inflated with a cap) for any declared Content-Type: SDKs
    post JSON as text/plain (browser beacons) or with no type at all."""

    media_type = "*/*"


def parsed_body(request: Any) -> Any:
    """request.data of an authenticated request; a body that is empty, not JSON (or not gzip
    as declared) or too large is kept as one rejected request, then refused (400, 413, 415),
    as /events does."""
    body_error = getattr(request, "_tracker_body_error", None)
    if body_error is not None:
        _request_refuse(request, body_error, body_error.raw_body)
    try:
        data = request.data
    except (MalformedJson, PayloadTooLarge, UnsupportedContentEncoding) as exc:
        _request_refuse(request, exc, exc.raw_body)
    if request.stream is None:  # no body at all: DRF does not even call the parser
        _request_refuse(request, MalformedJson("Request body is empty; send JSON.", b""), b"")
    return data


def request_refuse(request: Any, field: str, rule: str, message: str, body: Any) -> NoReturn:
    """Refuse a request whose JSON is not the protocol's shape (400), keeping it as one
    rejected event."""
    exc = exceptions.ValidationError({field: [message]}, rule)
    exc.field, exc.rule = field, rule
    _request_refuse(request, exc, body)


def _request_refuse(request: Any, exc: exceptions.APIException, body: Any) -> NoReturn:
    detail = exc.detail
    message = str(next(iter(detail.values()))[0]) if isinstance(detail, dict) else str(detail)
    error = FieldError(getattr(exc, "field", "body"), getattr(exc, "rule", "json"), message)
    view = request.parser_context.get("view") if request.parser_context else None
    protocol = getattr(view, "source", "api")  # a whole request: no message to replay
    exc.rejected_id = services.request_rejected_store(
        body, error, source=ingest_source(request, protocol)
    )
    raise exc


# --- 2. a translated message ----------------------------------------------------------------


class Translated(NamedTuple):
    """One foreign message after translation: our wire-format `payload`, or the `error` that
    kept it from being translated (it is then quarantined as is). `original` is the message as
    received, kept with the stored event or its quarantine row. (A named tuple: one is made for
    every message, and a frozen dataclass costs several times more to build.)"""

    original: Any
    payload: dict[str, Any] | None = None
    error: FieldError | None = None
    # The client's User-Agent and IP as the message states them (a server-side SDK sends the
    # browser's); empty: the request's own. Device type and country are derived from them.
    user_agent: str = ""
    ip: str = ""
    # The original as orjson wrote it when the translation had to (Segment measures each
    # message): stored as these bytes, not written again (ADR 0038).
    original_json: bytes | None = None


def untranslatable(original: Any, field: str, rule: str, message: str) -> Translated:
    """A message refused by the translation itself (not an object, unknown type ...)."""
    return Translated(original=original, error=FieldError(field, rule, text_safe(message, 300)))


# --- 3. into the ingestion service ----------------------------------------------------------


def key_id_of(request: Any) -> int | None:
    """The id of the request's ingestion key (None for a signed-in user or anonymous)."""
    user = request.user
    return user.key_id if isinstance(user, KeyPrincipal) else None


def ingest_source(
    request: Any, protocol: str = "api", translation: Mapping[str, Any] | None = None
) -> services.IngestSource:
    """Who sent the request: the key, the client IP (proxy headers already applied) and
    User-Agent, and the protocol stored as each event's `source`; for its messages, what
    their translation read from the request (kept with a quarantined one, for its replay)."""
    meta = getattr(request, "_request", request).META
    return services.IngestSource(
        key_id=key_id_of(request),
        ip=meta.get("REMOTE_ADDR") or None,
        protocol=protocol,
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        translation=translation,
    )


def _client_contexts(
    items: Sequence[Translated], source: services.IngestSource
) -> list[ClientContext | None] | None:
    """Per event, the message's own User-Agent and IP where it states them (else None: the
    request's, from `source`); None when no message states either (the common case, found
    in C)."""
    if not any(map(_USER_AGENT, items)) and not any(map(_IP, items)):
        return None
    return [
        ClientContext(item.user_agent or source.user_agent, item.ip or source.ip)
        if item.user_agent or item.ip
        else None
        for item in items
    ]


_PAYLOAD, _ERROR = operator.attrgetter("payload"), operator.attrgetter("error")
_ORIGINAL, _ORIGINAL_JSON = operator.attrgetter("original"), operator.attrgetter("original_json")
_USER_AGENT, _IP = operator.attrgetter("user_agent"), operator.attrgetter("ip")


def _originals(items: Sequence[Translated]) -> list[Any]:
    """Each item's original for the ingestion service: its JSON when the translation wrote it
    already, else the message."""
    written = list(map(_ORIGINAL_JSON, items))
    if None not in written:  # the common cases, found in C
        return written
    if not any(written):
        return list(map(_ORIGINAL, items))
    return [item.original if item.original_json is None else item.original_json for item in items]


def translated_ingest(
    items: Sequence[Translated],
    *,
    request: Any,
    source: str,
    translation: Mapping[str, Any] | None = None,
) -> list[services.EventOutcome]:
    """Store a request's translated messages through the ingestion service; one outcome per
    item, in order (`index` is the item's position). Translatable messages go through
    `events.services.event_batch_ingest` (validation, rules, dedupe, derivation, quarantine),
    each stored with `source` and its original message; the others are quarantined as sent
    with the translation's reason, in the same transaction. `translation`: what the mapping
    read from the request besides each message (Segment's path call and batch `sentAt`,
    PostHog's body `sent_at`), kept with quarantined messages so a replay maps them again."""
    ingest_from = ingest_source(request, source, translation or {})
    received_at = timezone.now()
    if any(map(_ERROR, items)):
        translated = [item for item in items if item.error is None]
        refused = [(item.original, [item.error]) for item in items if item.error is not None]
    else:  # the common case, found in C
        translated, refused = items, []

    def store() -> list[services.EventOutcome]:
        if not translated:
            return []
        return services.event_batch_ingest(
            list(map(_PAYLOAD, translated)),
            source=ingest_from,
            received_at=received_at,
            context=_client_contexts(translated, ingest_from),
            originals=_originals(translated),
        )

    if not refused:
        return store()  # every item translated: outcome i is item i's
    else:  # both or neither: a failure leaves nothing half stored for the client's re-send
        with transaction.atomic():
            stored = store()
            written = services.rejected_events_upsert(
                refused, source=ingest_from, received_at=received_at
            )
    stored_left, written_left = iter(stored), iter(written)
    outcomes = []
    for index, item in enumerate(items):
        if item.error is None:
            outcome = next(stored_left)
            outcome.index = index
        else:
            outcome = services.EventOutcome(
                index, services.REJECTED, errors=[item.error], rejected_id=next(written_left).id
            )
        outcomes.append(outcome)
    return outcomes


# --- 4. the answer --------------------------------------------------------------------------


def outcome_counts(statuses: Iterable[str]) -> dict[str, int]:
    """accepted / duplicates / rejected (from each outcome's `status`), as /events/batch
    counts them."""
    counts = {services.ACCEPTED: 0, services.DUPLICATE: 0, services.REJECTED: 0}
    for status in statuses:
        counts[status] += 1
    return {
        "accepted": counts[services.ACCEPTED],
        "duplicates": counts[services.DUPLICATE],
        "rejected": counts[services.REJECTED],
    }
