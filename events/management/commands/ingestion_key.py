"""`manage.py ingestion_key create|list|revoke|rotate`: keys without the admin; the raw key is
printed once, on creation or rotation, and never again."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from events import selectors, services
from events.models import KeyKind, KeyScope


def _listed(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _when(value: str) -> dt.datetime:
    """An ISO datetime, or a number of days from now."""
    if value.isdigit():
        return timezone.now() + dt.timedelta(days=int(value))
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"--expires: give an ISO datetime or a number of days, not {value!r}")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt.UTC)


class Command(BaseCommand):
    help = "Create, list, revoke or rotate ingestion keys (the raw key is shown once)."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="a new key; prints it once")
        create.add_argument("name")
        create.add_argument(
            "--scopes",
            help=f"comma-separated, of: {', '.join(KeyScope.values)} (default write,read; "
            "a public key: write)",
        )
        create.add_argument(
            "--public",
            action="store_true",
            help="a browser key: write only, from --origins only, own rate limit (ADR 0018)",
        )
        create.add_argument(
            "--origins",
            default="",
            help="public keys: comma-separated origins, e.g. https://shop.example.com",
        )
        create.add_argument("--expires", help="ISO datetime, or days from now")
        listing = actions.add_parser("list", help="keys with prefix, scopes, expiry, last use")
        listing.add_argument("--all", action="store_true", help="include revoked keys")
        revoke = actions.add_parser("revoke", help="deactivate a key (all workers within 1 s)")
        revoke.add_argument("key", help="id or prefix")
        rotate = actions.add_parser("rotate", help="a new key; the old one expires later")
        rotate.add_argument("key", help="id or prefix")
        rotate.add_argument("--grace-hours", type=float, default=24.0)

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _key_id(self, ref: str) -> int:
        key_id = selectors.ingestion_key_find(ref)
        if key_id is None:
            raise CommandError(f"No single key with id or prefix {ref!r}.")
        return key_id

    def _show_once(self, created: services.CreatedKey) -> None:
        key = created.key
        self.stdout.write(
            f"id={key.pk} name={key.name} kind={key.kind} scopes={','.join(key.scopes)}"
            + (f" origins={','.join(key.allowed_origins)}" if key.allowed_origins else "")
        )
        self.stdout.write(self.style.WARNING("Copy the key now; it is not shown again:"))
        self.stdout.write(created.raw_key)

    def _create(
        self,
        *,
        name: str,
        scopes: str | None,
        expires: str | None,
        public: bool,
        origins: str,
        **_,
    ) -> None:
        try:
            created = services.ingestion_key_create(
                name=name,
                scopes=None if scopes is None else _listed(scopes),
                expires_at=_when(expires) if expires else None,
                kind=KeyKind.PUBLIC if public else KeyKind.SECRET,
                allowed_origins=_listed(origins),
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        self._show_once(created)

    def _list(self, *, all: bool, **_) -> None:
        for key in selectors.ingestion_keys_list(include_revoked=all):
            state = "active" if key["is_active"] else "revoked"
            self.stdout.write(
                f"{key['id']:>5}  {key['prefix']}…  {key['name']:<24} {state:<8}"
                f" {key['kind']:<6}"
                f" scopes={','.join(key['scopes']) or '-'}"
                f"  expires={key['expires_at'] or 'never'}"
                f"  last_used={key['last_used_at'] or 'never'}"
            )

    def _revoke(self, *, key: str, **_) -> None:
        revoked = services.ingestion_key_revoke(key_id=self._key_id(key))
        self.stdout.write(f"Revoked {revoked}: refused by every worker within a second.")

    def _rotate(self, *, key: str, grace_hours: float, **_) -> None:
        try:
            created = services.ingestion_key_rotate(
                key_id=self._key_id(key), grace=dt.timedelta(hours=grace_hours)
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        self._show_once(created)
        self.stdout.write(f"The old key keeps working for {grace_hours:g} h, then expires.")
