"""Ingestion keys: created here, shown once, stored only as a hash; revoked and rotated here.

A revocation is a row update: every worker re-reads a key at most INGESTION_KEY_CACHE_SECONDS
after its last read (events.authentication), so it applies everywhere within a second.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from events.models import IngestionKey, KeyKind, KeyScope, origin_normalize

DEFAULT_SCOPES = (KeyScope.WRITE, KeyScope.READ)
ROTATION_GRACE = dt.timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: IngestionKey
    raw_key: str


def _scopes_clean(scopes: Iterable[str]) -> list[str]:
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(KeyScope.values)
    if unknown:
        raise ValueError(f"Unknown scopes {sorted(unknown)}: use {', '.join(KeyScope.values)}.")
    return scopes


def _origins_clean(kind: str, origins: Iterable[str]) -> list[str]:
    cleaned = sorted({origin_normalize(origin) for origin in origins})
    if kind == KeyKind.PUBLIC and not cleaned:
        raise ValueError("A public key needs the origins of the sites that send with it.")
    if kind != KeyKind.PUBLIC and cleaned:
        raise ValueError("Only public keys are bound to origins.")
    return cleaned


def ingestion_key_create(
    *,
    name: str,
    scopes: Iterable[str] | None = None,
    can_read: bool | None = None,
    expires_at: dt.datetime | None = None,
    is_active: bool = True,
    kind: str = KeyKind.SECRET,
    allowed_origins: Iterable[str] = (),
    user: Any = None,
) -> CreatedKey:
    """Create a key; the raw value exists only in the return value (store only its hash).

    `can_read=False` (the former flag) drops the read scope, for callers of the old signature.
    A public key (`kind="public"`, ADR 0018) has the write scope only (ValueError for any
    other) and at least one allowed origin; its raw value starts with `pk_`, a secret one's
    with `ek_`, so a key pasted in the wrong place is recognisable.
    """
    if kind not in KeyKind.values:
        raise ValueError(f"Unknown key kind {kind!r}: use {', '.join(KeyKind.values)}.")
    public = kind == KeyKind.PUBLIC
    if scopes is None:
        scopes = (KeyScope.WRITE,) if public else DEFAULT_SCOPES
    scope_list = _scopes_clean(scopes)
    if can_read is False:
        scope_list = [scope for scope in scope_list if scope != KeyScope.READ]
    if public and scope_list != [KeyScope.WRITE]:
        raise ValueError("A public key may only write: its scopes are exactly write.")
    origins = _origins_clean(kind, allowed_origins)
    raw_key = f"{'pk' if public else 'ek'}_{secrets.token_urlsafe(32)}"
    key = IngestionKey(
        name=name,
        prefix=raw_key[:10],
        key_hash=IngestionKey.hash_key(raw_key),
        scopes=scope_list,
        expires_at=expires_at,
        is_active=is_active,
        kind=kind,
        allowed_origins=origins,
    )
    key._history_user = user  # the audit trail's "who"
    key.save()
    return CreatedKey(key=key, raw_key=raw_key)


def ingestion_key_revoke(*, key_id: int, user: Any = None) -> IngestionKey:
    """Deactivate a key (idempotent); every worker refuses it within a second."""
    key = IngestionKey.objects.get(pk=key_id)
    if key.is_active:
        key.is_active = False
        key._history_user = user
        key.save(update_fields=["is_active"])
    return key


def ingestion_key_rotate(
    *, key_id: int, grace: dt.timedelta = ROTATION_GRACE, user: Any = None
) -> CreatedKey:
    """A new key with the same name and scopes; the old one keeps working until `grace` from
    now (or its own earlier expiry), so clients can switch without a gap."""
    with transaction.atomic():
        old = IngestionKey.objects.select_for_update().get(pk=key_id)
        if not old.is_active or old.is_expired:
            raise ValueError(f"Key {old} is revoked or expired: create a new key instead.")
        created = ingestion_key_create(
            name=old.name,
            scopes=old.scopes,
            expires_at=None,
            kind=old.kind,
            allowed_origins=old.allowed_origins,
            user=user,
        )
        old_expiry = timezone.now() + grace
        if old.expires_at is None or old.expires_at > old_expiry:
            old.expires_at = old_expiry
        old.replaced_by = created.key
        old._history_user = user
        old.save(update_fields=["expires_at", "replaced_by"])
    return created
