"""Who may send events and who may read them (see ENVIRONMENT in settings)."""

from django.conf import settings
from rest_framework.permissions import BasePermission

from events.authentication import KeyPrincipal


class CanIngest(BasePermission):
    message = "Sending events needs an ingestion key (Authorization: Bearer <key> or X-API-Key)."

    def has_permission(self, request, view) -> bool:
        if settings.INGEST_ALLOW_ANONYMOUS:
            return True
        return bool(request.user and request.user.is_authenticated)


class CanReadEvents(BasePermission):
    message = "Reading events needs a logged-in user or an ingestion key allowed to read."

    def has_permission(self, request, view) -> bool:
        if settings.READ_ALLOW_ANONYMOUS:
            return True
        user = request.user
        if isinstance(user, KeyPrincipal):
            return user.can_read
        return bool(user and user.is_authenticated)
