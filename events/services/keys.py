"""Ingestion keys: created here, shown once, stored only as a hash."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from events.models import IngestionKey


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: IngestionKey
    raw_key: str


def ingestion_key_create(*, name: str, can_read: bool = True, is_active: bool = True) -> CreatedKey:
    """Create a key; the raw value exists only in the return value (store only its hash)."""
    raw_key = f"ek_{secrets.token_urlsafe(32)}"
    key = IngestionKey.objects.create(
        name=name,
        prefix=raw_key[:10],
        key_hash=IngestionKey.hash_key(raw_key),
        can_read=can_read,
        is_active=is_active,
    )
    return CreatedKey(key=key, raw_key=raw_key)
