"""Our event ids for foreign messages (ADR 0016): uuid5 of the protocol's message id in a
namespace per source and key, so that a re-sent message maps to the same id and is a duplicate.
Every stored tracker event's id was derived here: nothing in this module may change what it
returns for a given input."""

from __future__ import annotations

import functools
import hashlib
import uuid
from typing import Any

import orjson

# The root of every tracker event id. Never change it: stored ids were derived from it, and a
# re-send is recognised only if it maps to the same id.
_EVENT_ID_ROOT = uuid.UUID("7d0c5a1e-6a52-4c1b-9a0e-3f2f3c6b8e11")
MESSAGE_ID_MAX_CHARS = 256


def event_id_for(*, source: str, key_id: int | None, message_id: Any, message: Any) -> str:
    """Our event_id (a UUID string) for a foreign message: uuid5 of the protocol's message id in
    a namespace per source and key, so the same message re-sent gets the same id (and is a
    duplicate), while two sources or two keys never collide even on equal message ids.

    A message without a usable id (absent, not a string or number, too long) is named by a hash
    of its canonical JSON: an exact re-send still dedupes."""
    if type(message_id) is str and 0 < len(message_id) <= MESSAGE_ID_MAX_CHARS:
        # The common case, written out (it runs for every message): `_uuid5_text` of "id:" +
        # the id, from a SHA-1 already fed with the namespace and prefix.
        hasher = _id_hasher(source, key_id).copy()
        try:
            hasher.update(message_id.encode())
        except UnicodeEncodeError:  # a lone surrogate: hashed as it always was
            hasher.update(message_id.encode("utf-8", "surrogatepass"))
        text = hasher.hexdigest()
        variant = _VARIANT[text[16]]
        return f"{text[:8]}-{text[8:12]}-5{text[13:16]}-{variant}{text[17:20]}-{text[20:32]}"
    namespace = _namespace(source, key_id)
    kind = type(message_id)
    if kind is int:
        message_id = str(message_id)
    elif kind is not str:
        message_id = None
    if not message_id or len(message_id) > MESSAGE_ID_MAX_CHARS:
        digest = hashlib.sha256(_canonical_json(message)).hexdigest()
        return _uuid5_text(namespace, f"sha256:{digest}")
    return _uuid5_text(namespace, "id:" + message_id)


@functools.lru_cache(maxsize=4096)
def _id_hasher(source: str, key_id: int | None) -> Any:
    """A SHA-1 fed with the namespace's bytes and "id:" (copied for each message id)."""
    return hashlib.sha1(_namespace(source, key_id) + b"id:", usedforsecurity=False)


@functools.lru_cache(maxsize=4096)
def _namespace(source: str, key_id: int | None) -> bytes:
    return uuid.uuid5(_EVENT_ID_ROOT, f"{source}:{key_id if key_id is not None else '-'}").bytes


def _uuid5_text(namespace: bytes, name: str) -> str:
    """str(uuid.uuid5(UUID(bytes=namespace), name)), without building UUID objects (it runs for
    every message; tests/unit/test_tracker_common.py holds it equal to the standard library):
    the SHA-1's hex with the version nibble set to 5 and the variant bits to 10."""
    text = hashlib.sha1(
        namespace + name.encode("utf-8", "surrogatepass"), usedforsecurity=False
    ).hexdigest()
    return f"{text[:8]}-{text[8:12]}-5{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-{text[20:32]}"


# The hex digit of a UUID's byte 8 high nibble once its top two bits are set to 10 (RFC 4122).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _canonical_json(message: Any) -> bytes:
    try:
        return orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return repr(message).encode("utf-8", "backslashreplace")
