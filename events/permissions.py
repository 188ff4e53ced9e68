"""Who may send events and who may read them (see ENVIRONMENT in settings).

A key passes by its scopes (write, read, export, admin); a logged-in user by the permission
its role grants for the same scope (`SCOPE_PERMISSIONS`; superusers pass).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import BasePermission

from events.authentication import KeyPrincipal
from events.cors import origin_check
from events.models import KeyScope

SCOPE_PERMISSIONS = {
    KeyScope.WRITE: "events.add_event",
    KeyScope.READ: "events.read_events",
    KeyScope.EXPORT: "events.export_events",
    KeyScope.ADMIN: "events.use_admin_api",
}


def principal_has_scope(user: Any, scope: str) -> bool:
    """A key by its scopes; a logged-in user by the permission mapped to the scope."""
    if isinstance(user, KeyPrincipal):
        return user.has_scope(scope)
    if not (user and user.is_authenticated):
        return False
    return user.has_perm(SCOPE_PERMISSIONS[scope])


class HasScope(BasePermission):
    """`permission_classes = [HasScope("admin")]`: the key has the scope, or the user the
    permission of that scope. DRF instantiates permission classes; an instance returns itself."""

    def __init__(self, scope: str) -> None:
        if scope not in SCOPE_PERMISSIONS:
            raise ValueError(f"Unknown scope {scope!r}: one of {', '.join(SCOPE_PERMISSIONS)}")
        self.scope = scope
        self.message = (
            f"This needs the {scope!r} scope: a key with it, or a user whose role grants it."
        )

    def __call__(self) -> HasScope:
        return self

    def has_permission(self, request, view) -> bool:
        return principal_has_scope(request.user, self.scope)


class CanIngest(BasePermission):
    """Keys need the write scope; a logged-in user (the browsable API) may send as before.
    A public key is also bound to its origins (403 origin_not_allowed otherwise), even where
    anonymous sending is allowed: a key that was sent is checked."""

    message = "Sending events needs an ingestion key with the write scope (Authorization: Bearer)."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if isinstance(user, KeyPrincipal) and user.public:
            origin_check(user, request._request)
        if settings.INGEST_ALLOW_ANONYMOUS:
            return True
        if isinstance(user, KeyPrincipal):
            return user.has_scope(KeyScope.WRITE)
        return bool(user and user.is_authenticated)


class CanReadEvents(BasePermission):
    message = "Reading events needs a key with the read scope, or a user whose role allows it."

    def has_permission(self, request, view) -> bool:
        if settings.READ_ALLOW_ANONYMOUS:
            return True
        return principal_has_scope(request.user, KeyScope.READ)
